"""Dynamic generation: one template x entries from a list, a CSV file or a JSON file."""

from __future__ import annotations

from pathlib import Path

import pytest

from meta.authoring.load import load_file, load_file_with_sources, loads
from meta.spec.errors import ValidationFailed

SPECS = Path(__file__).parents[1] / "fixtures" / "specs"


def test_for_each_list_keeps_native_types_and_runtime_templates() -> None:
    loaded = load_file_with_sources(SPECS / "generate_list.yaml")
    ch, de = loaded.pipelines
    assert (ch.id, de.id) == ("sales_ch", "sales_de")
    assert ch.description == "Sales for CH (entry 0)" and de.description == "Sales for DE (entry 1)"
    assert (ch.params["country"].default, de.params["country"].default) == ("CH", "DE")
    assert (ch.defaults.retries, de.defaults.retries) == (1, 2)  # "${{ each.retries }}" stays an integer
    assert ch.task("extract").params == {"tables": ["sales", "ads"]}  # ... and a list stays a list
    # Run-time Jinja ({{ }}, {% %}) is left for the backend to render.
    assert ch.task("extract").action.command == (
        "extract --country CH --date {{ ds }} {% if params.full %}--full{% endif %}"
    )
    assert ch.task_ids == ("extract", "load_ch") and de.task("load_de").upstream == ("extract",)
    assert loaded.source_of("sales_de") == (str(SPECS / "generate_list.yaml"), 6)


def test_from_csv() -> None:
    pipelines = load_file(SPECS / "generate_csv.yaml")
    assert [(p.id, p.defaults.retries) for p in pipelines] == [("sales_ch", 1), ("sales_de", 2), ("sales_fr", 3)]
    assert pipelines[2].task("extract").action.command == "extract FR"


def test_from_json() -> None:
    pipelines = load_file(SPECS / "generate_json.yaml")
    assert [(p.id, p.defaults.retries) for p in pipelines] == [("sales_it", 0), ("sales_at", 5)]


def test_errors_name_the_entry_and_the_template_line() -> None:
    text = """generate:
  for_each: [{country: CH, retries: 1}, {country: DE, retries: many}]
template:
  pipeline: "sales_${{ each.country | lower }}"
  defaults: {retries: "${{ each.retries }}"}
  tasks:
    extract: {shell: "extract ${{ each.country }}", upstream: [nope]}
"""
    with pytest.raises(ValidationFailed) as info:
        loads(text, "gen.yaml")
    lines = [str(p) for p in info.value.problems]
    assert lines == [
        "gen.yaml:5:23: pipeline 'sales_de': defaults.retries: expected a valid integer, unable to parse string as an"
        " integer; received 'many' (generated for entry 1: {'country': 'DE', 'retries': 'many'})",
        "gen.yaml:7:64: pipeline 'sales_ch', task 'extract': upstream 'nope' is not a task of this pipeline"
        " (generated for entry 0: {'country': 'CH', 'retries': 1})",
        "gen.yaml:7:64: pipeline 'sales_de', task 'extract': upstream 'nope' is not a task of this pipeline"
        " (generated for entry 1: {'country': 'DE', 'retries': 'many'})",
    ]


@pytest.mark.parametrize(
    ("generate", "template_extra", "expected"),
    [
        ("{for_each: [{a: 1}]}", 'description: "${{ each.b }}"', "gen.yaml:5:16: template expression in"),
        ("{for_each: [{a: 1}]}", 'description: "${{ each.b }}"', "has no attribute 'b' (generated for entry 0"),
        ("{for_each: [{a: 0}]}", 'description: "${{ 1 / each.a }}"', "failed: ZeroDivisionError"),
        ("{for_each: [{a: 1}]}", 'description: "${{ each.a.__class__.__mro__ }}"', "failed: access to attribute"),
        ("{from: missing.csv}", "", "gen.yaml:1:18: cannot read entries from"),
        ("{from: countries.txt}", "", "gen.yaml:1:18: from: needs a .csv or .json file"),
        ("{for_each: 5}", "", "gen.yaml:1:22: for_each must be a list; received int"),
        ("{}", "", "gen.yaml:1:11: generate: needs exactly one of for_each"),
        ("{for_each: [], each: 1}", "", "gen.yaml:1:26: unknown key 'each' in generate"),
    ],
)
def test_generation_errors(generate: str, template_extra: str, expected: str) -> None:
    text = f"generate: {generate}\ntemplate:\n  pipeline: p\n  tasks: {{a: {{noop: true}}}}\n  {template_extra}\n"
    with pytest.raises(ValidationFailed) as info:
        loads(text, "gen.yaml")
    assert expected in str(info.value)


def test_template_is_required() -> None:
    with pytest.raises(ValidationFailed, match="generate: needs a 'template:' mapping"):
        loads("generate: {for_each: [1]}\n", "gen.yaml")


def test_entry_values_that_look_like_credentials_are_not_shown() -> None:
    text = """generate:
  for_each: [{country: CH, api_token: tok-5550123}]
template:
  pipeline: "p_${{ each.country }}"
  tasks: {a: {noop: true, upstream: [zz]}}
"""
    with pytest.raises(ValidationFailed) as info:
        loads(text, "gen.yaml")
    assert "'api_token': '(hidden)'" in str(info.value)
    assert "tok-5550123" not in str(info.value)


def test_empty_for_each_generates_nothing() -> None:
    assert loads("generate: {for_each: []}\ntemplate: {pipeline: p, tasks: {a: {noop: true}}}\n") == []


def test_rendered_keys_that_collide_are_duplicates() -> None:
    text = 'generate: {for_each: [{a: 1}]}\ntemplate:\n  pipeline: p\n  tasks:\n    "t${{ each.a }}": {noop: true}\n'
    with pytest.raises(ValidationFailed) as info:
        loads(text + "    t1: {noop: true}\n", "gen.yaml")
    assert str(info.value.problems[0]) == (
        "gen.yaml:6:5: duplicate key 't1': first defined at line 5, again at line 6; YAML would silently keep only"
        " the last one (generated for entry 0: {'a': 1})"
    )
