"""What author SQL may contain: an allow-list of functions, operators, casts and constructs.

Author SQL (report queries, data triggers) runs with the connection's credentials, so what it may
call is listed here and everything else is refused: a server function such as ``table_to_xml``,
``dblink_connect``, ``pg_advisory_lock`` or ``current_setting`` is not on the list, whatever new ones
a database or extension adds tomorrow. :mod:`rule_compiler.sql_check` walks the parsed tree (sqlglot)
and checks every node against these sets:

* a function call is allowed when sqlglot parsed it to one of :data:`TYPED_FUNCTIONS` (sqlglot has
  a class for the functions it knows, e.g. ``exp.Substring`` for ``substr``/``substring``) or, for a
  function it does not know (``exp.Anonymous``), when its name is in :data:`NAMED_FUNCTIONS`;
* any other node must be one of :data:`CONSTRUCTS` (SELECT, joins, WHERE, GROUP BY, operators...);
* a cast must be to one of :data:`CAST_TYPES` (not ``regclass``/``regproc``/``oid``/``xml``...).

:data:`FUNCTION_GROUPS` is the same list as SQL authors write it, for docs and error messages; a test
keeps the two in step (every documented name passes the check, nothing else among the server's own
functions does).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.expressions.datatypes import DType

#: The functions, by group, as written in SQL (both dialects unless marked). The docs list these.
FUNCTION_GROUPS: dict[str, tuple[str, ...]] = {
    "aggregates": (
        "count", "sum", "avg", "min", "max", "string_agg", "group_concat (SQLite)", "array_agg",
        "bool_and", "bool_or", "every", "stddev", "stddev_pop", "stddev_samp", "variance",
        "var_pop", "var_samp", "percentile_cont", "percentile_disc", "mode", "median", "corr",
        "covar_pop", "covar_samp", "regr_slope", "regr_intercept", "regr_count", "regr_r2",
        "json_agg", "jsonb_agg", "json_object_agg", "json_group_array (SQLite)",
        "json_group_object (SQLite)", "total (SQLite)", "grouping",
    ),
    "window functions": (
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
        "first_value", "last_value", "nth_value",
    ),
    "arithmetic": (
        "abs", "round", "ceil", "ceiling", "floor", "trunc", "mod", "div", "power", "pow", "sqrt",
        "cbrt", "exp", "ln", "log", "log10", "log2 (SQLite)", "sign", "greatest", "least",
        "degrees", "radians", "pi", "width_bucket", "gcd", "lcm", "scale",
    ),
    "text": (
        "lower", "upper", "initcap", "length", "char_length", "character_length", "octet_length",
        "substr", "substring", "trim", "ltrim", "rtrim", "btrim", "replace", "translate", "concat",
        "concat_ws", "left", "right", "position", "strpos", "instr (SQLite)", "split_part",
        "starts_with", "reverse", "lpad", "rpad", "chr", "char (SQLite)", "ascii", "md5",
        "string_to_array", "array_to_string", "array_length", "cardinality",
    ),
    "date and time": (
        "date_trunc", "date_part", "extract", "date_bin", "to_char", "to_date", "to_timestamp",
        "to_number", "age", "make_date", "make_time", "make_timestamp", "make_timestamptz",
        "make_interval", "justify_days", "justify_hours", "justify_interval", "isfinite", "timezone",
        "now", "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
        "clock_timestamp", "statement_timestamp", "transaction_timestamp", "date",
        "datetime (SQLite)", "time (SQLite)", "strftime (SQLite)", "julianday (SQLite)",
        "unixepoch (SQLite)",
    ),
    "conditional and conversion": (
        "coalesce", "ifnull (SQLite)", "nullif", "iif (SQLite)", "typeof (SQLite)", "CASE", "CAST",
    ),
    "JSON": (
        "json_extract_path", "json_extract_path_text", "jsonb_extract_path",
        "jsonb_extract_path_text", "json_array_length", "jsonb_array_length", "json_typeof",
        "jsonb_typeof", "json_build_object", "jsonb_build_object", "to_json", "to_jsonb",
        "row_to_json", "json_extract (SQLite)", "json_type (SQLite)", "json_valid (SQLite)",
    ),
}  # fmt: skip

#: sqlglot's classes of the allowed functions it knows (and of operators it parses as functions:
#: ``->``/``->>`` JSONExtract, ``@>`` ArrayContainsAll, ``AND``/``OR``, ``CASE``, ``CAST``...).
TYPED_FUNCTIONS: frozenset[type[exp.Func]] = frozenset(
    {
        # aggregates
        exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.GroupConcat, exp.ArrayAgg,
        exp.LogicalAnd, exp.LogicalOr, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance,
        exp.VariancePop, exp.PercentileCont, exp.PercentileDisc, exp.Mode, exp.Median, exp.Corr,
        exp.CovarPop, exp.CovarSamp, exp.RegrSlope, exp.RegrIntercept, exp.RegrCount, exp.RegrR2,
        exp.JSONArrayAgg, exp.JSONObjectAgg, exp.Grouping,
        # window functions
        exp.RowNumber, exp.Rank, exp.DenseRank, exp.PercentRank, exp.CumeDist, exp.Ntile, exp.Lag,
        exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue,
        # arithmetic
        exp.Abs, exp.Round, exp.Ceil, exp.Floor, exp.Trunc, exp.Pow, exp.Sqrt, exp.Cbrt, exp.Exp,
        exp.Ln, exp.Log, exp.Sign, exp.Greatest, exp.Least, exp.Degrees, exp.Radians, exp.Pi,
        exp.WidthBucket,
        # text
        exp.Lower, exp.Upper, exp.Initcap, exp.Length, exp.Substring, exp.Trim, exp.Replace,
        exp.Translate, exp.Concat, exp.ConcatWs, exp.Left, exp.Right, exp.StrPosition,
        exp.SplitPart, exp.StartsWith, exp.Reverse, exp.Pad, exp.Chr, exp.Ascii, exp.MD5,
        exp.StringToArray, exp.ArrayToString, exp.ArraySize,
        # date and time
        exp.TimestampTrunc, exp.DateTrunc, exp.Extract, exp.DateBin, exp.TimeToStr, exp.StrToDate,
        exp.StrToTime, exp.UnixToTime, exp.ToNumber, exp.TimeFromParts, exp.TimestampFromParts,
        exp.MakeInterval, exp.JustifyDays, exp.JustifyHours, exp.JustifyInterval, exp.Date,
        exp.Datetime, exp.Time, exp.TsOrDsToTimestamp, exp.CurrentTimestamp, exp.CurrentDate,
        exp.CurrentTime, exp.Localtime, exp.Localtimestamp,
        # conditional, conversion, logic, constructors
        exp.Coalesce, exp.Nullif, exp.Case, exp.If, exp.Cast, exp.Typeof, exp.Exists, exp.Array,
        exp.Collate, exp.And, exp.Or,
        # JSON reading (functions and the -> ->> #> #>> ? ?| ?& @> <@ operators)
        exp.JSONExtract, exp.JSONExtractScalar, exp.JSONBExtract, exp.JSONBExtractScalar,
        exp.JSONBContainsTopKey, exp.JSONBContainsAnyTopKeys, exp.JSONBContainsAllTopKeys,
        exp.ArrayContainsAll, exp.ArrayContainedBy, exp.JSONType,
    }
)  # fmt: skip

#: Allowed functions sqlglot does not know (parsed as ``exp.Anonymous``), lower-case.
NAMED_FUNCTIONS: frozenset[str] = frozenset(
    {
        "every", "jsonb_agg", "total", "gcd", "lcm", "scale", "octet_length", "cardinality",
        "age", "make_date", "make_time", "make_timestamptz", "isfinite", "timezone", "date",
        "datetime", "time", "strftime", "julianday", "unixepoch", "clock_timestamp", "statement_timestamp",
        "transaction_timestamp", "jsonb_extract_path",
        "jsonb_extract_path_text", "json_array_length", "jsonb_array_length", "json_typeof",
        "jsonb_typeof", "json_build_object", "jsonb_build_object", "to_json", "to_jsonb",
        "row_to_json", "json_valid", "row", "all",
    }
)  # fmt: skip

#: Functions refused with a reason of their own rather than "not on the list".
REFUSED_WITH_REASON: dict[str, str] = {
    **dict.fromkeys(
        ("regexp_like", "regexp_i_like", "regexp_replace", "regexp_matches", "regexp_match",
         "regexp_extract", "regexp_split", "regexp_split_to_array", "regexp_split_to_table",
         "regexp_count", "regexp_instr", "regexp_substr", "similar_to"),
        "regular expressions are not allowed (a costly pattern runs for the whole timeout); use "
        "LIKE or ILIKE",
    ),
    **dict.fromkeys(
        ("generate_series", "exploding_generate_series", "unnest", "json_each", "jsonb_each",
         "json_array_elements", "jsonb_array_elements", "json_tree", "jsonb_to_recordset"),
        "functions that return rows are not allowed: read the catalog's tables",
    ),
    **dict.fromkeys(
        ("repeat", "format", "printf"),
        "it can build values of any size: use concat, lpad or rpad",
    ),
}  # fmt: skip

#: Groups named in error messages, where the full list lives.
ALLOWED_SUMMARY = (
    "aggregates, window functions, arithmetic, text, date/time, conditional and JSON-reading "
    "functions (the list: docs/security.md, 'Author SQL')"
)

#: ``lpad``/``rpad``: the length must be an integer literal of at most this many characters.
MAX_PAD_LENGTH = 1_000

#: The constructs (sqlglot node classes other than functions) a query may contain.
CONSTRUCTS: frozenset[type[exp.Expression]] = frozenset(
    {
        # statements and clauses
        exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
        exp.From, exp.Join, exp.Lateral, exp.Where, exp.Group, exp.Rollup, exp.Cube,
        exp.GroupingSets, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Fetch,
        exp.LimitOptions, exp.Distinct, exp.Values, exp.Table, exp.TableAlias, exp.Alias,
        exp.Window, exp.WindowSpec, exp.Filter, exp.WithinGroup, exp.IgnoreNulls,
        exp.RespectNulls,
        # names and values
        exp.Column, exp.Identifier, exp.Star, exp.Literal, exp.Boolean, exp.Null,
        exp.Placeholder, exp.ByteString, exp.RawString, exp.HexString, exp.UnicodeString,
        exp.National, exp.Interval, exp.IntervalSpan, exp.Var, exp.Kwarg, exp.DataType,
        exp.DataTypeParam, exp.Tuple, exp.Paren, exp.Bracket, exp.Slice,
        # operators
        exp.Not, exp.Neg, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
        exp.NullSafeNEQ, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Escape, exp.Any,
        exp.All, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv, exp.DPipe,
        exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot, exp.BitwiseLeftShift,
        exp.BitwiseRightShift, exp.AtTimeZone, exp.Overlaps,
        # JSON paths (of -> ->> json_extract)
        exp.JSONPath, exp.JSONPathRoot, exp.JSONPathKey, exp.JSONPathSubscript,
        exp.JSONPathWildcard,
    }
)  # fmt: skip

#: What a value may be cast to: plain data types, never object identifiers (``regclass``, ``oid``),
#: ``xml`` or user-defined types.
CAST_TYPES: frozenset[DType] = frozenset(
    {
        exp.DataType.Type.SMALLINT, exp.DataType.Type.INT, exp.DataType.Type.BIGINT,
        exp.DataType.Type.TINYINT, exp.DataType.Type.DECIMAL, exp.DataType.Type.DOUBLE,
        exp.DataType.Type.FLOAT, exp.DataType.Type.MONEY, exp.DataType.Type.TEXT,
        exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR, exp.DataType.Type.NCHAR,
        exp.DataType.Type.NVARCHAR, exp.DataType.Type.BOOLEAN, exp.DataType.Type.DATE,
        exp.DataType.Type.TIME, exp.DataType.Type.TIMETZ, exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.INTERVAL, exp.DataType.Type.JSON,
        exp.DataType.Type.JSONB, exp.DataType.Type.UUID, exp.DataType.Type.ARRAY,
    }
)  # fmt: skip

#: Bare words Postgres reads as functions of the session (``SELECT current_role``), not columns.
SESSION_KEYWORDS = frozenset({"current_role", "user", "system_user", "session_user", "current_user"})

#: Table name prefixes of system catalogs (an unqualified ``pg_class`` is Postgres' own).
SYSTEM_TABLE_PREFIXES = ("pg_", "sqlite_")


def documented_names() -> frozenset[str]:
    """Every function name of :data:`FUNCTION_GROUPS`, lower-case, without its ``(SQLite)`` note."""
    return frozenset(name.split(" ")[0].lower() for names in FUNCTION_GROUPS.values() for name in names)
