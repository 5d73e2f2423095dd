"""Assemble the documents of tests/taggers/data/dolma_code_taggers/ (run once; the outputs are stored).

`code.jsonl.gz`: real source files taken from an installed environment's site-packages (Python, C,
C++, CUDA, JavaScript incl. minified bundles, HTML, CSS, Markdown, YAML, JSON, shell, Lua, XML,
text; some truncated to keep the fixture small, which also breaks some of them), plus hand-written
edge cases and fake secrets. `metadata`: `ext` (no dot), `max_stars_count`, `path`.
`html.jsonl.gz`: pages for the Creative Commons taggers, the HTML in `metadata.html`.

    .venv/bin/python tests/taggers/data/make_dolma_code_taggers_inputs.py .venv/lib/python3.11/site-packages
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dolma_code_taggers" / "documents"

# (path under site-packages, characters kept: 0 = whole file)
REAL_FILES = [
    ("matplotlib/backends/web_backend/all_figures.html", 0),
    ("matplotlib/backends/web_backend/single_figure.html", 0),
    ("matplotlib/backends/web_backend/ipython_inline_figure.html", 0),
    ("ray/dashboard/client/build/index.html", 0),
    ("torch/utils/model_dump/skeleton.html", 0),
    ("moto/moto_server/templates/dashboard.html", 6000),
    ("matplotlib/backends/web_backend/js/nbagg_mpl.js", 0),
    ("matplotlib/backends/web_backend/js/mpl.js", 12000),
    ("pip/_vendor/urllib3/contrib/emscripten/emscripten_fetch_worker.js", 0),
    ("ray/dashboard/client/build/static/js/591.fe276a82.chunk.js", 0),
    ("ray/dashboard/client/build/static/js/main.84605326.js", 16000),
    ("matplotlib/backends/web_backend/css/fbm.css", 0),
    ("sklearn/utils/_repr_html/params.css", 0),
    ("isal/isa-l/README.md", 0),
    ("huggingface_hub/templates/modelcard_template.md", 0),
    ("ray/autoscaler/local/defaults.yaml", 0),
    ("moto/moto_proxy/setup_https_intercept.sh", 0),
    ("numpy/f2py/tests/src/array_from_pyobj/wrapmodule.c", 0),
    ("numpy/f2py/src/fortranobject.c", 9000),
    ("numpy/distutils/checks/cpu_avx512_skx.c", 0),
    ("numpy/_core/include/numpy/__multiarray_api.c", 5000),
    ("wrapt/_wrappers.c", 7000),
    ("pyarrow/feather.py", 0),
    ("yaml/__init__.py", 0),
    ("click/core.py", 16000),
    ("numpy/__init__.py", 12000),
    ("networkx/algorithms/polynomials.py", 0),
]
PYTHON_SAMPLE, C_SAMPLE = 16, 8


def sample(root: Path, pattern: str, k: int, max_bytes: int, seed: int) -> list[Path]:
    files = sorted(p for p in root.glob(pattern) if p.is_file() and 400 < p.stat().st_size < max_bytes)
    return random.Random(seed).sample(files, min(k, len(files)))


def real_documents(root: Path) -> list[tuple[str, str]]:
    picked = [(root / path, keep) for path, keep in REAL_FILES if (root / path).exists()]
    picked += [(p, 0) for p in sample(root, "**/*.py", PYTHON_SAMPLE, 9000, 1)]
    picked += [(p, 7000) for p in sample(root, "**/*.py", 3, 60000, 2)]  # cut mid-file: may not parse
    for pattern in ("**/*.h", "**/*.hpp", "**/*.cpp", "**/*.cu", "**/*.lua", "**/*.xml", "**/*.json", "**/*.rst"):
        picked += [(p, 6000) for p in sample(root, pattern, 2 if pattern in ("**/*.h", "**/*.json") else 1,
                                             200000, 3)]
    docs = []
    for path, keep in picked:
        text = path.read_text("utf-8", errors="replace")
        if keep and len(text) > keep:
            text = text[:keep]
        docs.append((str(path.relative_to(root)), text))
    return docs


JAVA = """/*
 * Copyright (c) 2021 Example Corp. All rights reserved.
 */
package org.example;

import java.util.List;

/** A greeter. {@code greet} says hello. */
public class Greeter {
    // the name to greet
    private final String name; /* never null */

    public Greeter(String name) { this.name = name; }

    /**
     * Says hello.
     * @return a greeting, e.g. "Hello, // not a comment"
     */
    public String greet() {
        String url = "http://example.org/*not-a-comment*/";
        return "Hello, " + name; // trailing
    }
}
"""

JS = """#!/usr/bin/env node
// Licensed under the MIT license.
'use strict';
const re = /\\/\\/ not a comment/g;  // but this is
const t = `template ${1 + 2} // still a string`;
/* block
   comment */
function f(a) { return a / 2 / 3; } // division, not a regex
"""

NOTEBOOK = json.dumps({"cells": [
    {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "Some text."]},
    {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
     "source": ["import numpy as np  # numbers\n", "np.arange(3)"]},
], "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}, indent=1)

PY_DOCSTRINGS = '''"""Module docstring.

   Indented second paragraph.
"""
# -*- coding: utf-8 -*-
import os  # os


class Alpha:
    """   Alpha's docstring, leading spaces."""

    def run(self):
        """Run alpha.   """
        # inside run

    async def arun(self):
        """Async methods are not counted."""


class Beta:
    def run(self):
        """
            Beta run, indented first line after a blank one.
        """

    try:
        def inner():
            """In a try body."""
    except ValueError:
        def handler():
            """In an except handler."""


def outer():
    """Outer."""
    def run():
        """Nested run."""
    return run


match os.name:
    case "posix":
        def posix_only():
            """Only on posix."""
    case _:
        pass

s = "# not a comment" + '# nor this' + """
# nor this line of a string
"""  # but this
'''

HTML_PAGE = """<!DOCTYPE html>
<html><head><title>A &amp; B</title>
<style>body { color: red; }</style>
<script>var x = "<p>not text</p>";</script>
</head>
<body>
  <p>Caf&eacute; &#233;t&#xE9; &NotEqualTilde; &unknown; &amp &lt;tag&gt;</p>
  <pre>   keep
     these   spaces   </pre>
  <div>   </div>
  <template><p>template content is not text</p></template>
  <ruby>漢<rt>kan</rt><rp>(</rp></ruby>
  <![CDATA[ cdata text ]]>
  <!-- a comment -->
  <br></br><img src="x.png"/>
  <textarea>  raw
  text </textarea>
  <p>Enough visible text here to pass the one-hundred-character threshold of the StarCoder HTML filter.</p>
</body></html>
"""

SECRETS_PY = '''import boto3

AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
password = "correct-horse-battery-staple-9"
db_url = "postgres://admin:s3cr3tPassw0rd@db.example.com:5432/app"
token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
hex_key = "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
print("no secret here")
'''

SECRETS_YAML = """database:
  user: admin
  password: hunter2-but-longer-Xy9
api:
  key: "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8="
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAfakefakefakefakefakefakefakefakefakefakefake
-----END RSA PRIVATE KEY-----
  password: hunter2-but-longer-Xy9
"""


def edge_documents() -> list[tuple[dict, str]]:
    """(metadata, text) of hand-written cases."""
    return [
        ({"ext": "c"}, ""),
        ({"ext": "txt"}, "   \n\t\n"),
        ({"ext": "c", "max_stars_count": 3}, "\n\n# header\n// more\n-- sql style\nint main(void) { return 0; }\n"),
        ({"ext": "c"}, "int a; /* no notice */ /* Copyright 2020 Someone */\n"),
        ({"ext": "c"}, "/* unterminated comment\n# x\n"),
        ({"ext": "h"}, "// Copyright 2019\n// All rights reserved.\n\n#pragma once\n"),
        ({"ext": "cpp"}, "/*\n * COPYRİGHT with a dotted capital I\n */\n#include <vector>\n"),
        ({"ext": "py"}, "def f(:\n    # a comment in broken code\n    pass\n"),
        ({"ext": "py"}, 'x = """unterminated\n# not a comment\n'),
        ({"ext": "py"}, "def f():\n    '''Doc.'''\n    return 1  # one\n".replace("\n", "\r\n")),
        ({"ext": "py"}, "# form\x0cfeed\nif True:\n\tx = 1  # tab\n\x0cy = 2\n"),
        ({"ext": "py"}, "# a\rb = '# c'\nz = 1  # d\re\n"),
        ({"ext": "py"}, PY_DOCSTRINGS),
        ({"ext": "py"}, "s = '# only in strings'\nt = \"#\"\n"),
        ({"ext": "py"}, "# -*- coding: utf-8 -*-\n# Ünïcödé ٣ 一二三 ½ Ⅻ\nx = 'é'  # ²\n"),
        ({"ext": "py"}, "#\n#\n#\n"),
        ({"ext": "pyw"}, "x = 1\n"),
        ({"ext": "xml"}, '<?xml version="1.0" encoding="UTF-8"?>\n<root><!-- c --><a>text</a></root>\n'),
        ({"ext": "svg"}, '  <?xml version="1.0"?><svg/>'),
        ({}, "no extension at all\n"),
        ({"ext": ".py"}, "x = 1  # dotted extension\n"),
        ({"ext": "PY"}, "x = 1  # upper-case extension\n"),
        ({"ext": "zzz"}, "unknown extension\n"),
        ({"ext": 5, "max_stars_count": None}, "numeric extension\n"),
        ({"ext": "go", "max_stars_count": 0}, "package main\n// Comment\nfunc main() {} /* block */\n"),
        ({"ext": "rs", "max_stars_count": 12}, "/// doc comment\n//! inner doc\n// plain\nfn main() {}\n"),
        ({"ext": "lua", "max_stars_count": 3.5}, "-- lua comment\n--[[ block\ncomment ]]\nprint('x')\n"),
        ({"ext": "sh", "max_stars_count": "7"}, "#!/bin/sh\n# comment\necho hi # trailing\n"),
        ({"ext": "txt"}, "line one\x0bline two\x1cline three\u2028line four\r\nfive\rsix\n"),
        ({"ext": "java", "max_stars_count": 1234}, JAVA),
        ({"ext": "js"}, JS),
        ({"ext": "js"}, "var x = 1;"),
        ({"ext": "ipynb"}, NOTEBOOK),
        ({"ext": "html"}, HTML_PAGE),
        ({"ext": "html"}, "<p>short</p>"),
        ({"ext": "htm"}, ""),
        ({"ext": "html"}, "<div><p>unclosed <b>bold <i>both</div> tail text " + "words " * 30 + "</p>"),
        ({"ext": "md"}, "# Title\n\n<!-- html comment in markdown -->\nText with `code` and a [link](http://x).\n"),
        ({"ext": "py"}, SECRETS_PY),
        ({"ext": "yaml"}, SECRETS_YAML),
        ({"ext": "js"}, "const cfg = { apiKey: 'AKIAIOSFODNN7EXAMPLE' };\n" * 2),
        ({"ext": "json"}, '{"password": "Tr0ub4dor&3-extra-long", "note": "no"}'),
    ]


LICENCE_PAGES = [
    '<a rel="license" href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>',
    "<a href='http://creativecommons.org/licenses/by-nc-nd/3.0/us/'>licence</a>",
    '<A HREF="http://creativecommons.org/licenses/by-sa/2.5/it/deed.it">CC</A>',
    '<meta name="dc.rights" content="https://creativecommons.org/publicdomain/zero/1.0/">',
    '<a href=&quot;https://creativecommons.org/licenses/by-nc/2.0/legalcode.fr&quot;>x</a>',
    '<a href="https://creativecommons.org/licenses/by-nc-sa/4.0/deed.de">CC</a> and '
    '<a href="https://creativecommons.org/licenses/by/3.0/">another</a> and '
    '<a href="http://creativecommons.org/publicdomain/mark/1.0/">a third</a>',
    '<a class="cc" title="x"\nhref="https://creativecommons.org/licenses/by-sa/">no version</a>',
    '<a href="https://creativecommons.org/licenses/by/2.0/uk/deed.en_GB">jurisdiction</a>',
    '<a href="https://creativecommons.org/publicdomain/certification/1.0/us/">cert</a>',
    '<p>See https://creativecommons.org/licenses/by/4.0 for the licence.</p>',
    '<p>Text mentioning creativecommons.org/licenses without a link.</p>',
    '<link rel="license" href="https://creativecommons.org/licenses/by-nd/4.0/">',
    '<a href="https://creativecommons.org/licenses/publicdomain/">old public domain</a>',
    '<a href="https://creativecommons.org/licenses/by-nc-sa/3.0">no slash at the end</a>',
    '<a\thref="https://creativecommons.org/licenses/by/4.0/" rel=license>tab</a>',
    '<a href="https://creativecommons.org/licenses/by/4.0/">one</a>'
    '<a href="https://creativecommons.org/licenses/by/4.0/">same twice</a>',
    '<meta content="http://creativecommons.org/licenses/by-sa/3.0/" property="cc:license"/>',
    '<a data-x="ü" href="https://creativecommons.org/licenses/by/1.0/fi/">ünïcode</a>',
    "",
    '<html><body><p>No licence at all.</p></body></html>',
]


def write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))


def main(site_packages: str) -> None:
    root = Path(site_packages)
    code = []
    for i, (path, text) in enumerate(real_documents(root)):
        ext = path.rsplit(".", 1)[-1]
        stars = [None, 0, 5, 120, 3][i % 5]
        code.append({"id": f"real-{i:03d}", "text": text, "source": "code",
                     "metadata": {"path": path, "ext": ext, "max_stars_count": stars}})
    for i, (metadata, text) in enumerate(edge_documents()):
        code.append({"id": f"edge-{i:03d}", "text": text, "source": "code", "metadata": metadata})
    write(OUT / "code.jsonl.gz", code)
    pages = [{"id": f"page-{i:03d}", "text": f"extracted text of page {i}", "source": "web",
              "metadata": {"html": f"<html><body>{html}</body></html>" if i % 2 else html}}
             for i, html in enumerate(LICENCE_PAGES)]
    write(OUT / "html.jsonl.gz", pages)
    print(len(code), "code documents,", len(pages), "pages")


if __name__ == "__main__":
    main(sys.argv[1])
