from dolma_tools.cli.stage import stage_command
from dolma_tools.taggers.runner import TagConfig, run_tag

command = stage_command(
    "tag", TagConfig, run_tag,
    help="Run taggers over documents and write attribute files mirroring the documents' paths "
         "(documents/... -> attributes/<experiment>/...), or under --destination prefixes (one per documents "
         "pattern). --tagger_modules also loads taggers written for Dolma's API. Taggers take options as NAME:key=value,key=value "
         "(e.g. ft_lang_id_doc_v1:model=/path/lid.bin, any:as=other_key_name); see `dolma list` and docs/taggers.md.")
