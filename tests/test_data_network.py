"""Azure inter-region RTT matrix on the real file and on corrupted copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_data_paths import TRACES, assert_message, corrupt, set_cell

from carbonsim.data import DataError, load_rtt_matrix, regions, rtt_ms

MATRIX = TRACES / "network" / "azure_inter_region_rtt_p50_ms_2026-07-30_matrix.csv"
LONG = TRACES / "network" / "azure_inter_region_rtt_p50_ms_2026-07-30_long.csv"


@pytest.fixture(scope="module")
def rtt() -> pd.DataFrame:
    return load_rtt_matrix()


def test_matrix_shape_names_and_diagonal(rtt):
    assert rtt.shape == (54, 54)
    assert list(rtt.index) == list(rtt.columns)
    assert (rtt.index.name, rtt.columns.name) == ("source", "destination")
    assert rtt.index[0] == "Australia Central" and rtt.index[-1] == "West US 3"
    values = rtt.to_numpy()
    assert np.isnan(np.diag(values)).all()
    off = values[~np.eye(54, dtype=bool)]
    assert not np.isnan(off).any()
    assert off.min() == 3.0 and off.max() == 344.0
    assert np.nanmax(np.abs(values - values.T)) == 18.0  # asymmetric as published


def test_matrix_agrees_with_the_long_file(rtt):
    long = pd.read_csv(LONG)
    assert len(long) == 2_862 == 54 * 53
    looked_up = [rtt.at[s, d] for s, d in zip(long["source_region"], long["destination_region"], strict=True)]
    np.testing.assert_array_equal(looked_up, long["rtt_p50_ms"].to_numpy(dtype=float))


def test_rtt_ms_lookups(rtt):
    assert rtt_ms("West US", "East US") == 67.0
    assert rtt_ms("East US", "West US") == 69.0
    assert rtt_ms("Southeast Asia", "Japan East") == 72.0
    assert rtt_ms("UK South", "North Europe", matrix=rtt) == 12.0
    assert rtt_ms("West US", "West US", same_region_ms=1.0) == 1.0
    assert len(regions()) == 54 and "Sweden Central" in regions(rtt)


def test_rtt_ms_errors():
    with pytest.raises(DataError, match=r"unknown source region 'us-west-1'; valid regions: \['Australia Central'"):
        rtt_ms("us-west-1", "East US")
    with pytest.raises(DataError, match=r"unknown destination region 'Mars'"):
        rtt_ms("East US", "Mars")
    with pytest.raises(DataError, match=r"no intra-region round-trip time for 'East US'.*same_region_ms"):
        rtt_ms("East US", "East US")


def rtt_copy(tmp_path, edit):
    return corrupt(MATRIX, tmp_path, edit, rows=None)


def test_negative_and_non_numeric_cells(tmp_path):
    path = rtt_copy(tmp_path, lambda lines: set_cell(lines, 3, 5, "-8"))
    with pytest.raises(DataError) as exc:
        load_rtt_matrix(path)
    assert_message(exc, str(path), "row 3 (line 4), source 'Australia East', destination 'Austria East'", "negative")
    path = rtt_copy(tmp_path, lambda lines: set_cell(lines, 2, 1, "4 ms"))
    with pytest.raises(DataError) as exc:
        load_rtt_matrix(path)
    assert_message(exc, "row 2 (line 3), source 'Australia Central 2', destination 'Australia Central'", "not a number")


def test_empty_off_diagonal_and_filled_diagonal(tmp_path):
    path = rtt_copy(tmp_path, lambda lines: set_cell(lines, 10, 20, ""))
    with pytest.raises(DataError, match=r"row 10 \(line 11\), source 'Central India', .*: empty cell"):
        load_rtt_matrix(path)
    path = rtt_copy(tmp_path, lambda lines: set_cell(lines, 4, 4, "0"))
    with pytest.raises(DataError, match=r"row 4 \(line 5\), source 'Australia Southeast', .*diagonal cell holds '0'"):
        load_rtt_matrix(path)


def test_implausible_rtt(tmp_path):
    path = rtt_copy(tmp_path, lambda lines: set_cell(lines, 1, 2, "3000"))
    with pytest.raises(DataError, match=r"row 1 \(line 2\).*value 3000 outside the plausible range \[0, 1000\] ms"):
        load_rtt_matrix(path)


def test_not_square_and_duplicated_names(tmp_path):
    path = rtt_copy(tmp_path, lambda lines: lines.pop())  # drop West US 3's row
    with pytest.raises(DataError, match=r"only in rows: \[\], only in columns: \['West US 3'\]"):
        load_rtt_matrix(path)
    path = rtt_copy(tmp_path, lambda lines: set_cell(lines, 2, 0, "Australia Central"))
    with pytest.raises(DataError, match=r"first column: region 'Australia Central' appears twice"):
        load_rtt_matrix(path)
    path = rtt_copy(tmp_path, lambda lines: lines.__setitem__(0, lines[0].replace("Source,", "From,")))
    with pytest.raises(DataError, match=r"line 1: unexpected header \['From', "):
        load_rtt_matrix(path)
