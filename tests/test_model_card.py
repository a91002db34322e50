"""Model cards the Hub accepts and that say what was saved."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from nsptask.model_card import ModelCardInfo, loading_snippet, render_model_card, write_model_card


def _info(**overrides) -> ModelCardInfo:
    values = dict(
        objective="mlm+nsp",
        data_format="nsp",
        metrics={"eval_mlm_accuracy": 0.12, "eval_nsp_accuracy": 0.61},
        model_name="tiny-nsp",
        architecture="BertForPreTraining",
        data_report={
            "source": "bundled English Wikipedia sample (103 articles)",
            "corpus": {"documents_used": 103, "sentences": 10, "tokens": 100},
            "splits": {},
        },
    )
    values.update(overrides)
    return ModelCardInfo(**values)


def test_a_local_base_model_stays_out_of_the_metadata_and_is_named_in_the_text(tmp_path):
    local = tmp_path / "runs" / "tiny"
    local.mkdir(parents=True)
    card = render_model_card(_info(base_model=str(local)))
    assert card.data.base_model is None and "base_model" not in card.data.to_dict()
    assert f"from `{local}` (a local checkpoint)" in card.text
    hub = render_model_card(_info(base_model="google-bert/bert-base-uncased"))
    assert hub.data.base_model == "google-bert/bert-base-uncased"


def test_the_card_has_a_license_datasets_and_eval_results_the_hub_parses(tmp_path):
    path = write_model_card(tmp_path, _info(datasets=["wikimedia/wikipedia"]))
    card = ModelCard.load(path)  # huggingface_hub's own parser of the card's YAML
    assert card.data.license == "cc-by-sa-4.0"  # the bundled corpus's license
    assert card.data.datasets == ["wikimedia/wikipedia"]
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert name == "tiny-nsp" and {r.metric_name for r in results} == {
        "MLM accuracy (masked positions)",
        "NSP accuracy",
    }
    other = render_model_card(_info(data_report=None, dataset_name="news.jsonl"))
    assert other.data.license == "other"
    assert render_model_card(_info(license="apache-2.0")).data.license == "apache-2.0"


@pytest.mark.parametrize(
    ("architecture", "expected"),
    [
        ("BertForPreTraining", "AutoModelForPreTraining"),
        ("RobertaForMaskedLM", "AutoModelForMaskedLM"),
        ("BertForSequenceClassification", "AutoModelForSequenceClassification"),
        ("DebertaV2ForTokenClassification", "AutoModelForTokenClassification"),
        ("RobertaForMaskedLMWithSentenceHead", "load_pretraining_model"),
    ],
)
def test_the_use_snippet_loads_the_class_that_was_saved(architecture, expected):
    snippet = "\n".join(loading_snippet(architecture, "me/model"))
    assert expected in snippet
    card = render_model_card(_info(architecture=architecture))
    assert expected in card.text and ("AutoModelForPreTraining" in card.text) == (expected == "AutoModelForPreTraining")
