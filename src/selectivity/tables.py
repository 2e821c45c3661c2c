"""The tables that pass between rules: identifier columns and small helpers to read and join them.

Every table is tidy: one row per observation, identified by the network columns
(:data:`NETWORK_COLUMNS`) and, for tables made from one checkpoint, the checkpoint columns.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd

#: A network is one (model, dataset, label corruption, seed).
NETWORK_COLUMNS = ("model", "dataset", "label_corruption", "seed")
#: A checkpoint of a network; ``checkpoint`` is "epoch" or "best", ``epoch`` its real epoch.
CHECKPOINT_COLUMNS = NETWORK_COLUMNS + ("checkpoint", "epoch")


def require_columns(table: pd.DataFrame, columns: Iterable[str], table_name: str) -> None:
    """Raise a ValueError naming the columns ``table`` lacks."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"the {table_name} table lacks columns {missing}; it has {list(table.columns)}")


def as_bool(column: pd.Series, name: str) -> pd.Series:
    """A boolean column as read back from CSV (bool, 0/1, or 'True'/'False' text)."""
    if column.dtype == bool:
        return column
    if pd.api.types.is_numeric_dtype(column) and column.isin([0, 1]).all():
        return column.astype(bool)
    text = column.astype(str).str.strip().str.lower()
    if text.isin(["true", "false"]).all():
        return text == "true"
    bad = column[~text.isin(["true", "false"])].iloc[0]
    raise ValueError(f"column {name!r} must be boolean, found the value {bad!r}")


def concatenate_tables(paths: Iterable[str]) -> pd.DataFrame:
    """One tidy table from many files of the same kind (per network or per checkpoint)."""
    tables = [pd.read_csv(path) for path in paths]
    if not tables:
        raise ValueError("no tables to concatenate")
    columns = list(tables[0].columns)
    for path, table in zip(paths, tables):
        if list(table.columns) != columns:
            raise ValueError(f"{path} has columns {list(table.columns)}, expected {columns}")
    return pd.concat(tables, ignore_index=True)


def per_network_means(table: pd.DataFrame, keys: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Average over random draws (and any other repeated rows) within each network first."""
    return (
        table.groupby(list(NETWORK_COLUMNS) + list(keys), dropna=False, sort=True)[list(values)]
        .mean()
        .reset_index()
    )


def rows_of_models(table: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """The rows of ``models`` only (e.g. the trained models, whose claims need training history)."""
    if table.empty:
        return table
    require_columns(table, ["model"], "combined")
    return table[table["model"].isin(list(models))].reset_index(drop=True)
