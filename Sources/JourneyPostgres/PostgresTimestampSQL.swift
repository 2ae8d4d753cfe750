/// The SQL side of `Timestamp` (JourneyCore) on PostgreSQL: `journey_instant(value)`, overloaded
/// for every column type the platform's app may have used for a timestamp (SPEC §8).
///
/// Each overload returns seconds since 1970-01-01 00:00:00 UTC as `double precision`, or NULL when
/// the value is NULL or unreadable, so the metrics compare one instant the same way whatever the
/// column holds:
///
/// | argument | read as |
/// | --- | --- |
/// | `timestamptz` | its instant |
/// | `timestamp` (without time zone) | UTC wall-clock time |
/// | `date` | UTC midnight |
/// | `bigint`, `double precision` (and `integer`, `numeric` by implicit cast) | epoch seconds, or milliseconds above 100,000,000,000 |
/// | `text` (and `varchar`) | the forms of SPEC §8: `YYYY-MM-DD HH:MM[:SS[.f…]]` with `T` or a space, an optional `Z`, `±HH:MM`, `±HHMM` or `±HH` (after an optional space), a date alone, or epoch digits |
///
/// Every overload is `IMMUTABLE` and `PARALLEL SAFE`. The non-text ones are `LANGUAGE sql` over
/// immutable built-ins (`date_part` on a timestamp without time zone, `AT TIME ZONE 'UTC'`), so the
/// planner inlines them and a filter on an indexed column stays a filter on the index's rows. The
/// text overload is PL/pgSQL: a date that does not exist (`2026-02-30`), an hour past 23, a minute or
/// second past 59, an offset past ±23:59, or any other text is unreadable (NULL), never an error,
/// so one bad row never stops a statement over many users.
enum PostgresTimestampSQL {
    /// One `CREATE OR REPLACE FUNCTION` statement per overload.
    static let functions: [String] = [
        """
        CREATE OR REPLACE FUNCTION journey_instant(value timestamptz) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN date_part('epoch', value AT TIME ZONE 'UTC')
        """,
        """
        CREATE OR REPLACE FUNCTION journey_instant(value timestamp) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN date_part('epoch', value)
        """,
        """
        CREATE OR REPLACE FUNCTION journey_instant(value date) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN (value - DATE '1970-01-01') * 86400.0
        """,
        """
        CREATE OR REPLACE FUNCTION journey_instant(value bigint) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN CASE WHEN abs(value) > 100000000000 THEN value / 1000.0 ELSE value END
        """,
        """
        CREATE OR REPLACE FUNCTION journey_instant(value double precision) RETURNS double precision
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN CASE WHEN value IN ('NaN', 'Infinity', '-Infinity') THEN NULL
                    WHEN abs(value) > 100000000000 THEN value / 1000.0 ELSE value END
        """,
        #"""
        CREATE OR REPLACE FUNCTION journey_instant(value text) RETURNS double precision
        LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
        DECLARE
            part text[];
            y int; mo int; d int; h int := 0; mi int := 0; s int := 0;
            fraction double precision := 0;
            offset_seconds int := 0;
            days int;
            last_day int;
            number double precision;
        BEGIN
            part := regexp_match(value,
                '^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?: ?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?))?)?$');
            IF part IS NULL THEN
                IF value ~ '^-?(\d{1,250}(\.\d*)?|\.\d{1,250})$' THEN
                    number := value::double precision;
                    RETURN CASE WHEN abs(number) > 100000000000 THEN number / 1000.0 ELSE number END;
                END IF;
                RETURN NULL;
            END IF;
            y := part[1]::int; mo := part[2]::int; d := part[3]::int;
            last_day := CASE
                WHEN mo = 2 THEN CASE WHEN (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0 THEN 29 ELSE 28 END
                WHEN mo IN (4, 6, 9, 11) THEN 30 ELSE 31 END;
            IF mo < 1 OR mo > 12 OR d < 1 OR d > last_day THEN RETURN NULL; END IF;
            IF part[4] IS NOT NULL THEN
                h := part[4]::int; mi := part[5]::int; s := COALESCE(part[6]::int, 0);
                IF h > 23 OR mi > 59 OR s > 59 THEN RETURN NULL; END IF;
                IF part[7] IS NOT NULL THEN
                    fraction := ('0.' || left(part[7], 15))::double precision;
                END IF;
                IF part[9] IS NOT NULL THEN
                    IF part[10]::int > 23 OR COALESCE(part[11]::int, 0) > 59 THEN RETURN NULL; END IF;
                    offset_seconds := (part[10]::int * 3600 + COALESCE(part[11]::int, 0) * 60)
                        * CASE WHEN part[9] = '-' THEN -1 ELSE 1 END;
                END IF;
            END IF;
            -- PostgreSQL has no year 0: its 1 BC is the proleptic Gregorian year 0.
            days := make_date(CASE WHEN y = 0 THEN -1 ELSE y END, mo, d) - DATE '1970-01-01';
            RETURN days * 86400.0 + h * 3600 + mi * 60 + s + fraction - offset_seconds;
        END
        $$
        """#,
    ]
}
