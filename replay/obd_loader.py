"""Read Open Bandit Dataset logs in chunks, validated, as numpy arrays.

The dataset layout is ``DIR/{random,bts}/CAMPAIGN/CAMPAIGN.csv`` with
``item_context.csv`` in the same folder and ``DIR/prior_bts.yaml`` beside the
policy folders. Each log row is one impression: the item shown, its position
(1 to len_list), the click and the probability with which the logging policy
put that item in that position.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # pandas-stubs is not a dev dependency

from bandit.errors import InvalidInputError, NotFoundError
from replay.schemas import (
    OBD_USER_FEATURES,
    InvalidRowsReport,
    LogSchema,
    OnInvalid,
    obd_affinity_column,
    obd_schema,
    validate_log,
)

LEN_LIST = 3
"""Positions per impression in the Open Bandit Dataset: left, centre and right."""

FETCH_HINT = (
    "run `loyalty-bandit datasets fetch obd` to download the dataset, or point --obd-dir "
    "at the folder that contains random/, bts/ and prior_bts.yaml"
)


class DatasetNotFoundError(NotFoundError):
    """A file or folder of the Open Bandit Dataset layout is missing."""


@dataclasses.dataclass(frozen=True)
class CampaignFiles:
    """The files of one logging policy and campaign."""

    log: Path
    item_context: Path


@dataclasses.dataclass(frozen=True, eq=False)
class ObdChunk:
    """The valid rows of one chunk of a log, as arrays of length n."""

    rows: npt.NDArray[np.int64]
    """Position of each row in the log file, counting data rows from 0."""
    item: npt.NDArray[np.intp]
    position: npt.NDArray[np.intp]
    """Position of the impression, from 1 to len_list."""
    click: npt.NDArray[np.float64]
    propensity: npt.NDArray[np.float64]
    user_codes: npt.NDArray[np.uint64]
    """Shape (n, 4): a stable 64-bit hash of each user feature's category."""
    affinity: npt.NDArray[np.float64]
    """Shape (n, n_items): the user's affinity to every item."""
    quarantined: pd.DataFrame
    """Invalid rows set aside with the reason. Empty unless on_invalid is "quarantine"."""
    report: InvalidRowsReport

    def __len__(self) -> int:
        return int(self.item.shape[0])


def found_any(folder: Path) -> bool:
    """Return True when ``folder`` exists and has at least one subfolder."""
    return folder.is_dir() and any(path.is_dir() for path in folder.iterdir())


def campaign_files(obd_dir: Path, policy: str, campaign: str) -> CampaignFiles:
    """Return the log and item context paths of ``policy``/``campaign``, or raise if missing."""
    if not obd_dir.is_dir():
        raise DatasetNotFoundError(f"Open Bandit Dataset folder not found: {obd_dir}; {FETCH_HINT}")

    policy_dir = obd_dir / policy
    campaign_dir = policy_dir / campaign
    if not campaign_dir.is_dir():
        if policy_dir.is_dir():
            found = sorted(path.name for path in policy_dir.iterdir() if path.is_dir())
            available = ", ".join(found) or "none"
        else:
            available = "none"
        # With other campaigns present the name is wrong, so downloading again would not help.
        hint = "pass one of them with --campaign" if found_any(policy_dir) else FETCH_HINT
        raise DatasetNotFoundError(
            f"campaign folder not found: {campaign_dir} (campaigns in {policy_dir}: {available}); {hint}"
        )

    files = CampaignFiles(
        log=campaign_dir / f"{campaign}.csv", item_context=campaign_dir / "item_context.csv"
    )
    for path in (files.log, files.item_context):
        if not path.is_file():
            raise DatasetNotFoundError(f"Open Bandit Dataset file not found: {path}; {FETCH_HINT}")
    return files


def read_item_count(item_context: Path) -> int:
    """Return the number of items listed in ``item_context.csv``.

    Item ids must be 0 to n_items - 1, because they index the affinity columns
    and the BTS prior.
    """
    try:
        frame = pd.read_csv(item_context, usecols=["item_id"])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInputError(str(item_context), f"cannot be read as CSV: {exc}") from exc
    item_ids = frame["item_id"].to_numpy()
    expected = np.arange(len(item_ids))
    if not np.array_equal(np.sort(item_ids), expected):
        raise InvalidInputError(
            str(item_context), f"item_id must be 0 to {len(item_ids) - 1}, each once"
        )
    return len(item_ids)


def iter_obd_log(
    path: Path,
    n_items: int,
    *,
    len_list: int = LEN_LIST,
    chunksize: int = 100_000,
    on_invalid: OnInvalid = "raise",
) -> Iterator[ObdChunk]:
    """Yield the log at ``path`` in chunks of at most ``chunksize`` rows, each validated.

    Invalid rows raise ``InvalidLogError`` or, with ``on_invalid="quarantine"``,
    are left out of the arrays and returned in the chunk's ``quarantined``.
    """
    schema = obd_schema(n_items, len_list)
    affinity_columns = [obd_affinity_column(item) for item in range(n_items)]
    try:
        yield from _read_chunks(path, schema, affinity_columns, chunksize, on_invalid)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInputError(str(path), f"cannot be read as CSV: {exc}") from exc


def _read_chunks(
    path: Path,
    schema: LogSchema,
    affinity_columns: list[str],
    chunksize: int,
    on_invalid: OnInvalid,
) -> Iterator[ObdChunk]:
    first_row = 0
    with pd.read_csv(path, index_col=0, chunksize=chunksize) as reader:
        for frame in reader:
            source = f"{path} (data rows {first_row}..{first_row + len(frame) - 1})"
            validated = validate_log(frame, schema, on_invalid=on_invalid, source=source)
            valid = validated.valid

            valid_positions = np.flatnonzero(validated.valid_mask)
            yield ObdChunk(
                rows=(first_row + valid_positions).astype(np.int64),
                item=_integers(valid["item_id"]),
                position=_integers(valid["position"]),
                click=_floats(valid["click"]),
                propensity=_floats(valid["propensity_score"]),
                user_codes=_user_codes(valid),
                affinity=valid[affinity_columns].apply(pd.to_numeric).to_numpy(np.float64),
                quarantined=validated.quarantined,
                report=validated.report,
            )
            first_row += len(frame)


def _floats(series: pd.Series) -> npt.NDArray[np.float64]:
    values: npt.NDArray[np.float64] = pd.to_numeric(series).to_numpy(np.float64)
    return values


def _integers(series: pd.Series) -> npt.NDArray[np.intp]:
    return _floats(series).astype(np.intp)


def _user_codes(frame: pd.DataFrame) -> npt.NDArray[np.uint64]:
    columns = [
        pd.util.hash_array(frame[name].astype(str).to_numpy(dtype=object))
        for name in OBD_USER_FEATURES
    ]
    if len(frame) == 0:
        return np.zeros((0, len(OBD_USER_FEATURES)), dtype=np.uint64)
    return np.column_stack(columns).astype(np.uint64)
