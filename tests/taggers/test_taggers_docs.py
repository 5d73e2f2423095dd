"""docs/taggers.md names every Dolma 1.2.1 tagger we do not provide, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from dolma_tools.taggers import catalogue

DOCS = Path(__file__).resolve().parents[2] / "docs" / "taggers.md"

# `dolma list` of Dolma 1.2.1
DOLMA_NAMES = [
    "allowlist_wikidata_cleaned_v1", "allowlist_wikidata_v1", "blocklist_firebog_ads_v1",
    "blocklist_firebog_crypto_v1", "blocklist_firebog_malicious_v1", "blocklist_firebog_nsfw_v1",
    "blocklist_firebog_social_v1", "blocklist_firebog_suspicious_v1", "blocklist_firebog_trackers_v1",
    "blocklist_hosts_adware_malware_v1", "blocklist_hosts_fakenews_v1", "blocklist_hosts_gambling_v1",
    "blocklist_hosts_porn_v1", "blocklist_hosts_social_v1", "blocklist_project_ads_v1",
    "blocklist_project_crime_v1", "blocklist_project_nsfw_v1", "blocklist_project_social_v1",
    "blocklist_project_vice_v1", "brave_core_abp_v1", "brave_nsfw_abp_v1", "bytes_length_v1", "c4_v1", "c4_v2",
    "cc_re", "cc_re_fast", "char_length_strip_ws_v1", "char_length_v1", "char_length_with_paragraphs_v1",
    "cld2_doc_v2", "cld2_en_doc_v2", "cld2_en_paragraph_v2", "cld2_en_paragraph_with_doc_score_v2",
    "cld2_paragraph_v2", "cld3_en_doc_v2", "cld3_en_paragraph_v2", "cld3_en_paragraph_with_doc_score_v2",
    "code_composition", "code_copyright_comments_v1", "code_redpajama_taggers_v1", "code_secrets_v1",
    "code_starcoder_taggers_v1", "code_starcoder_taggers_v2", "dclm-oh-eli5", "doc_count_v1", "dolma17-quality",
    "dolma_v1_tokenizer", "dolma_v2_tokenizer", "domain_blocklist_phishing_v1", "domain_blocklist_utp_v1",
    "ft_lang_id_1e2", "ft_lang_id_doc_v1", "ft_lang_id_en_doc_v2", "ft_lang_id_en_only_v2",
    "ft_lang_id_en_paragraph_v2", "ft_lang_id_en_paragraph_with_doc_score_v2", "ft_lang_id_paragraph_v1",
    "gopher_v1", "gopher_v2", "jigsaw_hatespeech_document_v2", "jigsaw_hatespeech_sentence_v2",
    "jigsaw_nsfw_document_v1", "jigsaw_nsfw_sencence_v2", "langdetect_doc_en_v1", "langdetect_doc_v1",
    "langdetect_en_paragraph_v1", "langdetect_paragraph_v1", "lingua_1e2", "lingua_doc_en_v1", "lingua_doc_v1",
    "lingua_en_only_v1", "lingua_en_par_v1", "lingua_par_v1", "link_blocklist_phishing_v1",
    "not_alphanum_paragraph_v1", "oisd_big_abp_v1", "oisd_nsfw_abp_v1", "oisd_small_abp_v1",
    "olmo_pretokenizer_v1", "olmo_pretokenizer_with_paragraphs_v1", "paragraph_repetitions_v1",
    "paragraph_tokenizer_repetitions_v1", "pii_presidio_v1", "pii_regex_v1", "pii_regex_v2",
    "pii_regex_with_counts_fast_v2", "pii_regex_with_counts_v2", "random_number_v1", "repetitions_v1",
    "tokenizer_repetitions_v1", "tokenizer_repetitions_v2r2", "tokenizers_AI2_OLMo_v1",
    "tokenizers_EleutherAI_GPT_NeoX_20B", "uniseg_length_paragraphs_v1",
    "uniseg_length_paragraphs_with_doc_length_v1", "uniseg_length_paragraphs_with_empty_v1", "uniseg_length_v1",
    "whitespace_tokenizer_v1", "whitespace_tokenizer_with_paragraphs_v1",
]


def test_not_provided_section_lists_exactly_the_missing_dolma_taggers():
    text = DOCS.read_text()
    section = text[text.index("### Dolma 1.2.1 taggers not provided"):]
    section = section[:section.index("\n## ")]
    listed = set(re.findall(r"`([A-Za-z0-9_.-]+)`", section)) & set(DOLMA_NAMES)
    missing = set(DOLMA_NAMES) - set(catalogue())
    assert listed == missing and len(DOLMA_NAMES) == 99
    assert f"these {len(missing)} are not in ours" in section
