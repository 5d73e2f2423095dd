"""Build the mixer test corpus from the dev corpus (run once; see README.md).

Two document files of real web text from the dev corpus, edited so every mixer feature has
something to act on: e-mail addresses (PII spans), paragraphs repeated across documents
(duplicate-paragraph spans), and a `metadata.length` field (metadata filters).
"""

import gzip
import json
import sys
from pathlib import Path

DEV = Path(sys.argv[1]) / "web" / "web-0000.json.gz"
OUT = Path(__file__).parent / "source" / "documents" / "web"

docs = [json.loads(line) for line in gzip.open(DEV, "rt")]
emails = ["jane.doe@example.com", "info@acme.org", "bob_smith99@mail.example.net"]
shared = "Subscribe to our newsletter for weekly updates and exclusive offers.\n"
for i, doc in enumerate(docs):
    text = doc["text"]
    if i % 4 == 1:  # e-mail addresses inside a paragraph
        text = text.replace("\n", f" Contact {emails[i % 3]} for details.\n", 1)
    if i % 5 == 2:  # a second address at the end
        text = text + f"Questions? Write to {emails[(i + 1) % 3]} or call us.\n"
    if i % 3 == 0:  # the same paragraph in many documents
        text = shared + text
    doc["text"] = text
    doc["metadata"]["length"] = len(text)
OUT.mkdir(parents=True, exist_ok=True)
for name, chunk in (("web-0000.json.gz", docs[:18]), ("web-0001.json.gz", docs[18:])):
    with gzip.open(OUT / name, "wt") as fh:
        for doc in chunk:
            fh.write(json.dumps(doc) + "\n")
