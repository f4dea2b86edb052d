"""Validation of the long results table: normalization and errors that name the rows."""

import pandas as pd
import pytest

from lr0fm_core.metrics import ResultsTableError, read_results_table, validate_results_table

COLUMNS = ["model", "dataset", "resolution", "top1", "n_classes"]


def good_rows():
    return [
        ["clip", "dtd", "hr", 0.44, 47],
        ["clip", "dtd", 16, 0.05, 47],
        ["clip", "eurosat", "hr", 0.5, 10],
        ["clip", "eurosat", 16, 0.2, 10],
    ]


def frame(rows, **extra):
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.assign(**extra)


def test_valid_table_is_normalized_and_keeps_extra_columns():
    rows = good_rows()
    rows[0] = [" clip ", "dtd ", " HR", "0.44", "47"]
    rows[1][2] = "16"
    table = frame(rows, family=["vit"] * 4)
    table.index = [10, 11, 12, 13]
    out = validate_results_table(table)
    assert out["model"].tolist() == ["clip"] * 4
    assert out["dataset"].tolist() == ["dtd", "dtd", "eurosat", "eurosat"]
    assert out["resolution"].tolist() == ["hr", 16, "hr", 16]
    assert out["top1"].tolist() == [0.44, 0.05, 0.5, 0.2]
    assert out["n_classes"].tolist() == [47, 47, 10, 10]
    assert out["family"].tolist() == ["vit"] * 4
    assert out.index.tolist() == [0, 1, 2, 3]


def test_missing_columns_are_named_with_the_existing_ones():
    table = frame(good_rows()).drop(columns=["top1", "n_classes"])
    with pytest.raises(ResultsTableError, match=r"\['top1', 'n_classes'\].*'model', 'dataset', 'resolution'"):
        validate_results_table(table)


@pytest.mark.parametrize("row_index, field, value, message", [
    (1, "top1", 1.5, "top1 must be a number in [0, 1]"),
    (1, "top1", float("nan"), "top1 must be a number in [0, 1]"),
    (1, "top1", "high", "top1 must be a number in [0, 1]"),
    (3, "n_classes", 1, "n_classes must be an integer >= 2"),
    (3, "n_classes", 2.5, "n_classes must be an integer >= 2"),
    (3, "resolution", "tiny", "resolution must be 'hr' or a positive integer"),
    (3, "resolution", -16, "resolution must be 'hr' or a positive integer"),
    (1, "model", " ", "empty model name"),
])
def test_bad_value_names_the_row(row_index, field, value, message):
    rows = good_rows()
    rows[row_index][COLUMNS.index(field)] = value
    with pytest.raises(ResultsTableError) as info:
        validate_results_table(frame(rows))
    text = str(info.value)
    assert message in text
    assert f"row {row_index + 1} (" in text
    assert text.count("row ") == 1  # only the offending row is listed


def test_duplicate_rows_are_all_named():
    rows = good_rows() + [["clip", "dtd", "16", 0.06, 47]]
    with pytest.raises(ResultsTableError, match=r"duplicate.*row 2 \(model='clip', dataset='dtd'.*row 5 \("):
        validate_results_table(frame(rows))


def test_missing_hr_row_names_the_low_res_rows():
    rows = [r for r in good_rows() if not (r[1] == "eurosat" and r[2] == "hr")]
    expected = r"no 'hr' row.*row 3 \(model='clip', dataset='eurosat', resolution=16\)"
    with pytest.raises(ResultsTableError, match=expected):
        validate_results_table(frame(rows))


def test_inconsistent_n_classes_within_a_dataset():
    rows = good_rows()
    rows[1][4] = 48
    with pytest.raises(ResultsTableError, match=r"n_classes differs.*row 1 .*row 2 .*n_classes=48"):
        validate_results_table(frame(rows))


def test_long_lists_of_offending_rows_are_capped():
    rows = [["m", f"d{i}", "hr", 2.0, 10] for i in range(25)]
    with pytest.raises(ResultsTableError) as info:
        validate_results_table(frame(rows))
    assert "row 10 (" in str(info.value) and "row 11 (" not in str(info.value)
    assert "and 15 more" in str(info.value)


def test_every_problem_is_reported_at_once():
    rows = good_rows()
    rows[0][3] = -0.1
    rows[3][4] = 0
    with pytest.raises(ResultsTableError) as info:
        validate_results_table(frame(rows))
    assert "top1" in str(info.value) and "n_classes" in str(info.value)
    assert "\n" not in str(info.value)  # one line, as the CLI prints errors


def test_empty_and_non_dataframe_inputs():
    with pytest.raises(ResultsTableError, match="no rows"):
        validate_results_table(frame([]))
    with pytest.raises(ResultsTableError, match="DataFrame"):
        validate_results_table([{"model": "m"}])


def test_read_csv_normalizes_and_names_csv_lines(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("model,dataset,resolution,top1,n_classes,top5\n"
                    "clip,dtd,hr,0.44,47,0.7\nclip,dtd,16,0.05,47,0.2\n")
    out = read_results_table(good)
    assert out["resolution"].tolist() == ["hr", 16]
    assert out["top5"].tolist() == [0.7, 0.2]

    bad = tmp_path / "bad.csv"
    bad.write_text("model,dataset,resolution,top1,n_classes\n"
                   "clip,dtd,hr,0.44,47\nclip,dtd,16,7,47\n")
    expected = r"line 3 \(model='clip', dataset='dtd', resolution='16', top1=7"
    with pytest.raises(ResultsTableError, match=expected):
        read_results_table(bad)


def test_read_csv_unreadable_or_empty(tmp_path):
    with pytest.raises(ResultsTableError, match="cannot read results table"):
        read_results_table(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ResultsTableError, match="is empty"):
        read_results_table(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(ResultsTableError, match="no data rows"):
        read_results_table(header_only)
