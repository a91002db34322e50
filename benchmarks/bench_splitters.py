"""Compare the sentence splitters nsptask wraps: speed on the bundled corpus, accuracy on hard cases.

Prints JSON: per splitter, characters/s on the bundled Wikipedia sample (its documents re-joined
into raw text), and the share of gold cases split exactly right (English abbreviations, decimals,
initials, quotes; Chinese full-width punctuation and quotes).

    python benchmarks/bench_splitters.py
"""

from __future__ import annotations

import json
import time

from nsptask.corpus import iter_documents
from nsptask.segmentation import SPLITTERS

# Each case: (language, text, expected sentences). Written by hand for this benchmark.
GOLD = [
    ("en", "Dr. Smith arrived. He was late.", ["Dr. Smith arrived.", "He was late."]),
    ("en", "The value rose to 3.5 percent in 2019. Analysts were surprised.",
     ["The value rose to 3.5 percent in 2019.", "Analysts were surprised."]),
    ("en", "She works for the U.S. government. Her office is in D.C. now.",
     ["She works for the U.S. government.", "Her office is in D.C. now."]),
    ("en", "Mr. and Mrs. Jones left at 5 p.m. yesterday. They returned today.",
     ["Mr. and Mrs. Jones left at 5 p.m. yesterday.", "They returned today."]),
    ("en", "J. R. R. Tolkien wrote novels. He taught at Oxford.",
     ["J. R. R. Tolkien wrote novels.", "He taught at Oxford."]),
    ("en", "It costs $4.99, e.g. at the shop. Buy two.", ["It costs $4.99, e.g. at the shop.", "Buy two."]),
    ("en", "\"Stop!\" he shouted. Nobody moved.", ["\"Stop!\" he shouted.", "Nobody moved."]),
    ("en", "Is it true? Yes! It is.", ["Is it true?", "Yes!", "It is."]),
    ("en", "The ship was 120 ft. long. It sank in 1912.", ["The ship was 120 ft. long.", "It sank in 1912."]),
    ("en", "See Fig. 3 for details. The trend is clear.", ["See Fig. 3 for details.", "The trend is clear."]),
    ("en", "He was born c. 1450 in Italy. He died in 1519.", ["He was born c. 1450 in Italy.", "He died in 1519."]),
    ("en", "Version 2.0.1 was released. It fixed bugs.", ["Version 2.0.1 was released.", "It fixed bugs."]),
    ("en", "The St. Lawrence River is long. It flows east.", ["The St. Lawrence River is long.", "It flows east."]),
    ("en", "Prof. Brown et al. disagreed. The debate continues.",
     ["Prof. Brown et al. disagreed.", "The debate continues."]),
    ("en", "Anarchism is a philosophy. It rejects hierarchy.", ["Anarchism is a philosophy.", "It rejects hierarchy."]),
    ("zh", "今天天气很好。我们去公园吧！", ["今天天气很好。", "我们去公园吧！"]),
    ("zh", "他说：“今天天气很好。”我们出发了。", ["他说：“今天天气很好。”", "我们出发了。"]),
    ("zh", "真的吗？是的。", ["真的吗？", "是的。"]),
    ("zh", "价格是3.5元。很便宜！", ["价格是3.5元。", "很便宜！"]),
    ("zh", "她问：“你来吗？”我说：“来。”", ["她问：“你来吗？”", "我说：“来。”"]),
    ("zh", "北京是中国的首都。上海是最大的城市。广州在南方。",
     ["北京是中国的首都。", "上海是最大的城市。", "广州在南方。"]),
]


def main() -> None:
    docs = [" ".join(doc["sentences"]) for doc in iter_documents()]
    n_chars = sum(len(d) for d in docs)
    results = {}
    for name, cls in SPLITTERS.items():
        splitter_en = cls("en")
        splitter_en("Warm up.")
        start = time.perf_counter()
        n_sentences = sum(len(splitter_en(d)) for d in docs)
        seconds = time.perf_counter() - start
        correct = {"en": 0, "zh": 0}
        total = {"en": 0, "zh": 0}
        failures = []
        for lang, text, expected in GOLD:
            got = cls(lang)(text)
            total[lang] += 1
            if got == expected:
                correct[lang] += 1
            else:
                failures.append({"text": text, "got": got})
        results[name] = {
            "chars_per_s": round(n_chars / seconds),
            "sentences": n_sentences,
            "gold_accuracy_en": round(correct["en"] / total["en"], 3),
            "gold_accuracy_zh": round(correct["zh"] / total["zh"], 3),
            "failures": failures,
        }
    names = list(results)
    ratio = results[names[0]]["chars_per_s"] / results[names[1]]["chars_per_s"]
    print(json.dumps({"corpus_chars": n_chars, "splitters": results, f"speed_ratio_{names[0]}_to_{names[1]}": round(ratio, 2)},
                     indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
