"""A custom remove-NSP study through the Python API.

Five arms (RoBERTa's two formats without NSP, BERT's segment pairs and single-sentence pairs with NSP, ALBERT's
SOP), three seeds, a bigger budget than the default, the corpus probes, and real benchmark files as columns (GLUE's
MRPC as distributed, a CoNLL NER set), each fine-tuned with three fine-tuning seeds.

    python examples/study_api.py                                   # CPU: hours (15 runs)
    accelerate launch --config_file examples/accelerate_ddp_8gpu.yaml examples/study_api.py
"""

from nsptask.report import write_report
from nsptask.study import AblateArguments, run_study

args = AblateArguments(
    output_dir="runs/study-custom",
    arms=["mlm:full-sentences", "mlm:doc-sentences", "mlm+nsp:nsp", "mlm+nsp:sentence-pair", "mlm+sop:sop"],
    seeds=[1, 2, 3],
    preset="mini",
    token_budget=5_000_000,
    downstream=["segment-tagging", "coherence-other-document", "coherence-same-document", "connective"],
    finetune_seeds=3,
    # Benchmark files as columns, NAME=TRAIN,TEST[,VALIDATION] (uncomment with your copies):
    # task_files=["mrpc=msr_paraphrase_train.txt,msr_paraphrase_test.txt", "wnut=wnut17/train.conll,wnut17/test.conll"],
)
run_study(args)  # resumable: run it again after an interruption
print(write_report(args.output_dir).read_text().split("## How to read it")[0])
