"""Carbon-intensity loaders on the real files and on corrupted copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_data_paths import TRACES, assert_message, corrupt, set_cell, swap

from carbonsim.data import DataError, available_zones, load_eia930, load_electricitymaps, load_watttime_moer
from carbonsim.data.carbon import ELECTRICITYMAPS_ZONE_IDS, electricitymaps_path

ZONES = [
    "AU-NSW", "AU-VIC", "BR-SP", "CA-ON", "CL-SIC", "DE-LU", "GB", "IN-WE",
    "JP-TK", "KR", "SG", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS", "US-TEX-ERCO", "ZA",
]  # fmt: skip
BAS = ["AZPS", "BPAT", "CISO", "ERCO", "MISO", "NYIS", "PJM", "SOCO"]
EIA = TRACES / "carbon_intensity" / "eia930_sustaindc_hourly_2022.csv.gz"
WATTTIME = TRACES / "carbon_intensity" / "watttime_moer_caiso_north_2023-06-08_2023-07-08_5min.csv.gz"
UTC = "UTC"


@pytest.fixture(scope="module")
def em() -> dict[str, pd.Series]:
    return {zone: load_electricitymaps(zone) for zone in ZONES}


def test_available_zones():
    assert available_zones() == ZONES


def test_electricitymaps_spans_four_years_hourly_without_gaps(em):
    for zone, s in em.items():
        assert s.name == zone
        assert len(s) == 35_064
        assert s.index[0] == pd.Timestamp("2021-01-01 00:00", tz=UTC)
        assert s.index[-1] == pd.Timestamp("2024-12-31 23:00", tz=UTC)
        assert str(s.index.dtype) == "datetime64[ns, UTC]"
        assert s.dtype == np.float64
        assert (np.diff(s.index.asi8) == 3_600_000_000_000).all()
        assert s.min() >= 0.0 and s.max() <= 2000.0


def test_electricitymaps_known_values(em):
    assert em["AU-NSW"].iloc[0] == 543.41
    assert em["DE-LU"].iloc[0] == 449.07
    assert em["US-CAL-CISO"].iloc[-1] == 131.87
    assert em["US-CAL-CISO"][pd.Timestamp("2024-12-31 22:00", tz=UTC)] == 96.87
    assert em["CA-ON"].min() == 0.0  # a real zero, kept
    lca = load_electricitymaps("AU-NSW", kind="lca")
    assert lca.iloc[0] == 594.78
    assert (lca >= em["AU-NSW"]).all()  # life-cycle includes the operational emissions


def test_electricitymaps_zone_id_aliases_are_the_files_own():
    assert ELECTRICITYMAPS_ZONE_IDS == {"BR-SP": "BR-CS", "CL-SIC": "CL-SEN", "DE-LU": "DE"}


def test_unknown_zone_and_kind():
    with pytest.raises(DataError, match=r"no Electricity Maps file for zone 'FR'.*available zones: \['AU-NSW'"):
        load_electricitymaps("FR")
    with pytest.raises(DataError, match=r"unknown Electricity Maps kind 'marginal'"):
        load_electricitymaps("GB", kind="marginal")


EM_SRC = electricitymaps_path("GB")
EM_VALUE = 4  # direct intensity column


def em_copy(tmp_path, edit):
    return corrupt(EM_SRC, tmp_path, edit)


def test_em_nan_cell(tmp_path):
    path = em_copy(tmp_path, lambda lines: set_cell(lines, 10, EM_VALUE, ""))
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, str(path), "row 10 (line 11)", "2021-01-01T09:00:00+00:00", "empty cell (NaN)")


def test_em_negative_value(tmp_path):
    path = em_copy(tmp_path, lambda lines: set_cell(lines, 7, EM_VALUE, "-3.5"))
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, str(path), "row 7 (line 8)", "2021-01-01T06:00:00+00:00", "negative value -3.5")


def test_em_value_out_of_unit_range(tmp_path):
    # 152.52 gCO2/kWh written in gCO2/MWh: the wrong unit is caught by the plausible range.
    path = em_copy(tmp_path, lambda lines: set_cell(lines, 3, EM_VALUE, "152520"))
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, "row 3 (line 4)", "2021-01-01T02:00:00+00:00", "outside the plausible range [0, 2000]")


def test_em_removed_row_is_a_gap(tmp_path):
    path = em_copy(tmp_path, lambda lines: lines.pop(6))
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, str(path), "first missing timestamp 2021-01-01T05:00:00+00:00", "1 timestamp(s) missing")


def test_em_duplicated_timestamp(tmp_path):
    path = em_copy(tmp_path, lambda lines: lines.insert(5, lines[4]))
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, str(path), "duplicated timestamp 2021-01-01T03:00:00+00:00 at rows 4, 5 (lines 5, 6)")


def test_em_swapped_rows(tmp_path):
    path = em_copy(tmp_path, lambda lines: swap(lines, 20, 21))
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, str(path), "not strictly increasing: row 21 (line 22) has 2021-01-01T19:00:00+00:00")


def test_em_wrong_header(tmp_path):
    def edit(lines):
        lines[0] = lines[0].replace("(direct)", "(Direct)")

    path = em_copy(tmp_path, edit)
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, str(path), "line 1: unexpected header", "'Carbon Intensity gCO₂eq/kWh (Direct)'", "missing")


def test_em_non_utc_offset(tmp_path):
    path = em_copy(tmp_path, lambda lines: set_cell(lines, 2, 0, "2021-01-01 02:00:00+01:00"))
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, str(path), "row 2 (line 3)", "'2021-01-01 02:00:00+01:00'", "not in UTC")


def test_em_zone_id_must_match(tmp_path):
    path = em_copy(tmp_path, lambda lines: set_cell(lines, 9, 3, "IE"))
    with pytest.raises(DataError) as exc:
        load_electricitymaps("GB", path=path)
    assert_message(exc, str(path), "row 9 (line 10)", "Zone Id 'IE'; expected 'GB'")


def test_em_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"file not found"):
        load_electricitymaps("GB", path=tmp_path / "nope.csv.gz")


@pytest.fixture(scope="module")
def eia_filled() -> dict[str, tuple[pd.Series, int]]:
    return {ba: load_eia930(ba, fill_gaps="linear") for ba in BAS}


def test_eia930_spans_2022_hourly(eia_filled):
    for ba, (s, _) in eia_filled.items():
        assert s.name == ba
        assert len(s) == 8_760
        assert s.index[0] == pd.Timestamp("2022-01-01 00:00", tz=UTC)
        assert s.index[-1] == pd.Timestamp("2022-12-31 23:00", tz=UTC)
        assert not s.isna().any()


def test_eia930_empty_cells_are_counted_when_filled(eia_filled):
    counts = {ba: n for ba, (_, n) in eia_filled.items()}
    assert counts == {"AZPS": 0, "BPAT": 0, "CISO": 3, "ERCO": 0, "MISO": 3, "NYIS": 0, "PJM": 23, "SOCO": 0}


def test_eia930_known_values_and_linear_fill(eia_filled):
    azps = load_eia930("AZPS")
    assert azps.iloc[0] == 631.6617084572886
    assert azps.equals(eia_filled["AZPS"][0])
    ciso = eia_filled["CISO"][0]
    before, after = ciso["2022-01-05 09:00+00:00"], ciso["2022-01-05 11:00+00:00"]
    assert before == 290.8370167903163 and after == 296.88716185921385
    assert ciso["2022-01-05 10:00+00:00"] == pytest.approx((before + after) / 2)


def test_eia930_empty_cells_raise_without_fill():
    with pytest.raises(DataError) as exc:
        load_eia930("PJM")
    assert_message(exc, str(EIA), "row 54272 (line 54273)", "2022-03-13T07:00:00+00:00", "empty cell (NaN)", "'avg_CI'")


def test_eia930_unknown_ba():
    with pytest.raises(DataError, match=r"no rows for balancing authority 'WAAT'; the file has \['AZPS', 'BPAT'"):
        load_eia930("WAAT")


def test_eia930_naive_timestamp(tmp_path):
    path = corrupt(EIA, tmp_path, lambda lines: set_cell(lines, 12, 1, "2022-01-01 11:00:00"))
    with pytest.raises(DataError) as exc:
        load_eia930("AZPS", path=path)
    assert_message(exc, str(path), "row 12 (line 13)", "naive timestamp '2022-01-01 11:00:00' (no UTC offset)")


def test_eia930_rows_are_numbered_in_the_whole_file(tmp_path):
    # Rows 1..8760 are AZPS; a negative value in BPAT's 3rd hour is file row 8763.
    path = corrupt(EIA, tmp_path, lambda lines: set_cell(lines, 8763, 10, "-1.0"), rows=9000)
    load_eia930("AZPS", path=path)
    with pytest.raises(DataError) as exc:
        load_eia930("BPAT", path=path)
    assert_message(exc, "row 8763 (line 8764)", "2022-01-01T02:00:00+00:00", "negative value -1")


def test_eia930_row_without_ba_is_not_dropped(tmp_path):
    path = corrupt(EIA, tmp_path, lambda lines: set_cell(lines, 30, 0, ""))
    with pytest.raises(DataError, match=r"row 30 \(line 31\): empty cell in column 'balancing_authority'"):
        load_eia930("BPAT", path=path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / EIA.name
    path.write_bytes(EIA.read_bytes()[:50_000])
    with pytest.raises(DataError, match="cannot parse as CSV"):
        load_eia930("AZPS", path=path)


def test_eia930_fill_does_not_hide_other_problems(tmp_path):
    path = corrupt(EIA, tmp_path, lambda lines: lines.pop(100))
    with pytest.raises(DataError, match=r"first missing timestamp 2022-01-05T03:00:00\+00:00"):
        load_eia930("AZPS", path=path, fill_gaps="linear")


@pytest.fixture(scope="module")
def moer() -> pd.Series:
    return load_watttime_moer()


def test_watttime_span_resolution_and_values(moer):
    assert moer.name == "CAISO_NORTH"
    assert len(moer) == 8_928
    assert moer.index[0] == pd.Timestamp("2023-06-08 00:00", tz=UTC)
    assert moer.index[-1] == pd.Timestamp("2023-07-08 23:55", tz=UTC)
    assert (np.diff(moer.index.asi8) == 300_000_000_000).all()
    assert moer.iloc[0] == 425.01605069
    assert moer.iloc[-1] == 441.79896838
    assert 35 < moer.min() < 36 and 462 < moer.max() < 463


def test_watttime_off_grid_and_nan(tmp_path):
    path = corrupt(WATTTIME, tmp_path, lambda lines: set_cell(lines, 4, 0, "2023-06-08 00:16:00"))
    with pytest.raises(DataError) as exc:
        load_watttime_moer(path=path)
    assert_message(exc, str(path), "row 4 (line 5), 2023-06-08T00:16:00+00:00: timestamp off the regular 0 days 00:05")
    path = corrupt(WATTTIME, tmp_path, lambda lines: set_cell(lines, 8, 1, "nan"))
    with pytest.raises(DataError) as exc:
        load_watttime_moer(path=path)
    assert_message(exc, "row 8 (line 9), 2023-06-08T00:35:00+00:00: empty cell (NaN) in column 'Caiso_North'")


def test_watttime_header_is_verbatim(tmp_path):
    path = corrupt(WATTTIME, tmp_path, lambda lines: lines.__setitem__(0, "time,Caiso_North"))
    with pytest.raises(DataError, match=r"unexpected header \['time', 'Caiso_North'\]"):
        load_watttime_moer(path=path)
