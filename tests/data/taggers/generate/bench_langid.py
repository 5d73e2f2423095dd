"""fastText language id: our taggers' docs/s vs raw `model.predict(list_of_texts)` on the same texts.

    python tests/data/taggers/generate/bench_langid.py [repeats]
Raw predict gets the texts with newlines replaced (the minimum `predict` accepts), same `k`.
CPU time, best of `repeats`, interleaved, on news + reviews-0000 + forums + web of the dev corpus.
"""

import gzip
import json
import sys
import time

from dolma_tools.taggers import Document, get_tagger
from dolma_tools.taggers.language import default_lid_model, load_fasttext

DEV = "/work/shared/corpora/dev/documents"
docs = [Document.from_json(json.loads(line))
        for f in ["news/news-0000", "reviews/reviews-0000", "forums/forums-0000", "web/web-0000"]
        for line in gzip.open(f"{DEV}/{f}.json.gz", "rt")]
repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
model = load_fasttext(default_lid_model())
print(f"{len(docs)} documents, {sum(len(d.text) for d in docs) / 1e6:.1f}M characters")
for name, k in [("ft_lang_id_top3_doc", 3), ("ft_lang_id_en_doc_v2", -1), ("ft_lang_id_doc_v1", -1)]:
    tagger = get_tagger(name)
    raw = ours = float("inf")
    for _ in range(repeats):
        texts = [d.text.replace("\n", " ") for d in docs]
        t = time.process_time()
        model.predict(texts, k=k)
        raw = min(raw, time.process_time() - t)
        t = time.process_time()
        tagger.tag_batch(docs)
        ours = min(ours, time.process_time() - t)
    print(f"{name:22s} raw predict(k={k:2d}) {len(docs) / raw:6.0f} docs/s   tagger {len(docs) / ours:6.0f} docs/s"
          f"   tagger/raw {raw / ours:.2f}")
