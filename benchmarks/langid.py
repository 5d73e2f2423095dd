"""Language-id accuracy of dolma-tools' fastText taggers on the multilingual dev corpus.

The multilingual source holds one Universal Declaration of Human Rights translation per
document, with `metadata.language_name` such as `German_Deutsch`. Names are mapped to the ISO
codes fastText's lid.176 predicts; languages lid.176 does not know are left out and counted.
Top-1 accuracy = the highest-scoring language of `ft_lang_id_doc_v1` is an accepted code.
Bosnian, Croatian and Serbian accept each other's codes (and `sh`): lid.176 splits that
continuum differently from the corpus labels.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from benchmarks.compare import iter_records
from benchmarks.measure import run_measured

_BCS = {"bs", "hr", "sr", "sh"}
LANGUAGE_CODES: dict[str, set[str]] = {
    "Afrikaans": {"af"}, "Albanian": {"sq"}, "Arabic": {"ar"}, "Asturian": {"ast"}, "Basque": {"eu"},
    "Belorus": {"be"}, "Bengali": {"bn"}, "Bikol": {"bcl"}, "Bosnian": _BCS, "Breton": {"br"},
    "Bulgarian": {"bg"}, "Catalan": {"ca"}, "Cebuano": {"ceb"}, "Corsican": {"co"}, "Croatian": _BCS,
    "Hrvatski": _BCS, "Czech": {"cs"}, "Danish": {"da"}, "Dutch": {"nl"}, "English": {"en"},
    "Esperanto": {"eo"}, "Estonian": {"et"}, "Farsi": {"fa"}, "Filipino": {"tl"}, "Finnish": {"fi"},
    "French": {"fr"}, "Frisian": {"fy"}, "Galician": {"gl"}, "German": {"de"}, "Greek": {"el"},
    "Guarani": {"gn"}, "HaitianCreole": {"ht"}, "Hebrew": {"he"}, "Hindi": {"hi"}, "Hungarian": {"hu"},
    "Icelandic": {"is"}, "Ido": {"io"}, "Iloko": {"ilo"}, "Indonesian": {"id"}, "Interlingua": {"ia"},
    "IrishGaelic": {"ga"}, "Italian": {"it"}, "Japanese": {"ja"}, "Javanese": {"jv"}, "Kannada": {"kn"},
    "Kapampangan": {"pam"}, "Kazakh": {"kk"}, "Korean": {"ko"}, "Kurdish": {"ku", "ckb"}, "Latin": {"la"},
    "Latvian": {"lv"}, "Luxembourgish": {"lb"}, "Macedonian": {"mk"}, "Malagasy": {"mg"}, "Malay": {"ms"},
    "Maltese": {"mt"}, "Minangkabau": {"min"}, "Mongolian": {"mn"}, "Nahuatl": {"nah"}, "Nepali": {"ne"},
    "Norwegian": {"no", "nn"}, "OccitanAuvergnat": {"oc"}, "OccitanLanguedocien": {"oc"},
    "Osetin": {"os"}, "Polish": {"pl"}, "Portuguese": {"pt"}, "Punjabi": {"pa", "pnb"},
    "Quechua": {"qu"}, "Quichua": {"qu"}, "Rhaeto-Romance": {"rm"}, "Romanian": {"ro"}, "Russian": {"ru"},
    "Sammarinese": {"eml"}, "Sanskrit": {"sa"}, "Sardinian": {"sc"}, "ScottishGaelic": {"gd"}, "Serbian": _BCS, "Sinhala": {"si"},
    "Slovak": {"sk"}, "Slovenian": {"sl"}, "Somali": {"so"}, "Sorbian": {"hsb", "dsb"}, "Spanish": {"es"},
    "Sundanese": {"su"}, "Swahili": {"sw"}, "Swaheli": {"sw"}, "Swedish": {"sv"}, "Turkish": {"tr"},
    "Uighur": {"ug"}, "Ukrainian": {"uk"}, "Uzbek": {"uz"}, "Vietnamese": {"vi"},
    "Vietnamese-ALRN": {"vi"}, "Walloon": {"wa"}, "Waray": {"war"}, "Welsh": {"cy"}, "Yoruba": {"yo"},
}
# Exceptions where the full name must decide (Norsk-Nynorsk is nn, Bokmal is no).
FULL_NAME_CODES: dict[str, set[str]] = {"Norwegian_Norsk-Nynorsk": {"nn"}, "Norwegian_Norsk-Bokmal": {"no"}}


def expected_codes(language_name: str) -> set[str] | None:
    if language_name in FULL_NAME_CODES:
        return FULL_NAME_CODES[language_name]
    base = language_name.split("_")[0]
    return LANGUAGE_CODES.get(base)


def top1(attributes: dict) -> str | None:
    best, best_score = None, float("-inf")
    for key, spans in attributes.items():
        if not spans:
            continue
        score = max(float(s[2]) for s in spans)
        if score > best_score:
            best, best_score = key.rsplit("__", 1)[-1], score
    if best and best.startswith("label_"):
        best = best[len("label_"):]
    return best


def accuracy(documents: Path, attributes: Path) -> dict:
    """Top-1 accuracy over the documents whose language lid.176 knows."""
    correct = total = unknown = 0
    wrong: list[str] = []
    files = [Path(d) / f for d, _, names in os.walk(documents, followlinks=True) for f in names if ".json" in f]
    for path in sorted(files):
        attr = attributes / path.relative_to(documents)
        if not attr.exists():
            continue
        for doc, att in zip(iter_records(path), iter_records(attr)):
            name = (doc.get("metadata") or {}).get("language_name", "")
            codes = expected_codes(name)
            if not codes:
                unknown += 1
                continue
            total += 1
            pred = top1(att.get("attributes") or {})
            if pred in codes:
                correct += 1
            else:
                wrong.append(f"{name}->{pred}")
    return {"documents_scored": total, "correct": correct,
            "top1_accuracy": round(correct / total, 4) if total else None,
            "documents_not_in_lid176": unknown, "errors": wrong[:40]}


def run_langid(ours_cmd: list[str], dev_corpus: Path, work: Path, env: dict) -> dict:
    """Tag the multilingual dev documents with ft_lang_id_doc_v1 and score the top-1 language."""
    src = dev_corpus / "documents" / "multilingual"
    if not src.is_dir():
        return {"status": "n/a", "why": f"{src} not found"}
    root = work / "langid"
    if root.exists():
        shutil.rmtree(root)
    (root / "documents").mkdir(parents=True)
    (root / "documents" / "multilingual").symlink_to(src.resolve())
    results = {}
    for tagger in ("ft_lang_id_doc_v1",):
        cmd = ours_cmd + ["tag", "--documents", str(root / "documents" / "multilingual" / "*"),
                          "--taggers", tagger, "--processes", "1"]
        m = run_measured(cmd, log=root / f"{tagger}.log", env=env, timeout=900)
        if not m.ok:
            results[tagger] = {"status": f"n/a ({m.error_summary()})"}
            continue
        res = accuracy(root / "documents", root / "attributes" / tagger)
        res["seconds"] = round(m.seconds, 2)
        res["status"] = "ok"
        results[tagger] = res
    return results
