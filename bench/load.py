"""Load the benchmark database: 1,000,000 realistic customers across 10 tenants.

``python -m bench.load [--customers N] [--reload]``

Creates the database named by ``BENCH_DATABASE_URL`` (default ``patron_bench`` on
127.0.0.1:5432), applies Patron's migrations, and fills ``customers`` and
``customer_identities`` with binary COPY. Names come from Faker in ten locales (accents
included: José, Conceição, Müller, Łukasz, Şahin, Dvořák); Faker is sampled once into
pools, which keep its name frequencies, and rows are combined from the pools, so a
million rows take about a minute to generate instead of an hour.

Rows are written in ``created_at`` order across all tenants (as a live system writes
them), with UUIDv7 ids carrying that same time. The secondary indexes of the two tables
are dropped during the COPY and rebuilt from their exact definitions afterwards, then the
tables are vacuumed and analysed. The load is skipped when the database already holds a
complete load of the same size (``--reload`` drops and rebuilds it).

It also writes the sample tables the measurement draws from (``bench_ids``,
``bench_upsert_keys``, ``bench_search_terms``) and ``bench_uuid7()`` for pgbench.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import time
import unicodedata
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import phonenumbers
import uuid_utils
from faker import Faker

from bench import common
from patron.db.migrate import upgrade

CHUNK = 50_000
SAMPLES_VERSION = "2"  # bump when the sample tables change: they are rewritten
SEED = 20261122

# Locale -> (phone region, IANA time zone). Tenant i sells mostly to LOCALES[i].
LOCALES: dict[str, tuple[str, str]] = {
    "es_ES": ("ES", "Europe/Madrid"),
    "pt_BR": ("BR", "America/Sao_Paulo"),
    "fr_FR": ("FR", "Europe/Paris"),
    "de_DE": ("DE", "Europe/Berlin"),
    "es_MX": ("MX", "America/Mexico_City"),
    "it_IT": ("IT", "Europe/Rome"),
    "pl_PL": ("PL", "Europe/Warsaw"),
    "en_US": ("US", "America/New_York"),
    "tr_TR": ("TR", "Europe/Istanbul"),
    "cs_CZ": ("CZ", "Europe/Prague"),
}
TAGS = (
    "vip",
    "newsletter",
    "returning",
    "instagram-lead",
    "black-friday",
    "loyalty",
    "b2b",
    "wholesale",
)
ATTRIBUTES = (
    '{"source": "instagram_ad"}',
    '{"source": "facebook_ad", "campaign": "spring"}',
    '{"source": "web", "referrer": "google"}',
    '{"size": "M"}',
)
BIRTH_MIN = date(1950, 1, 1)
PREFERENCES = ('{"language": "es"}', '{"contact": "whatsapp"}', '{"newsletter": "weekly"}')

CUSTOMER_COLUMNS = (
    "id", "tenant_id", "email", "phone", "first_name", "last_name", "gender", "birth_date",
    "locale", "timezone", "profile_pic_url", "status", "customer_type", "platform", "app_id",
    "psid", "external_ids", "marketing_opt_in", "tags", "attributes", "preferences",
    "last_interaction_at", "blocked_at", "block_reason", "version", "deleted_at",
    "created_at", "updated_at",
)  # fmt: skip
IDENTITY_COLUMNS = (
    "id", "tenant_id", "customer_id", "kind", "namespace", "value", "released_at",
    "created_at", "updated_at",
)  # fmt: skip


@dataclass
class LocalePool:
    """Names, email domains and phone prefixes of one locale, sampled from Faker once."""

    locale: str
    region: str
    timezone: str
    male: list[str]
    female: list[str]
    last: list[str]
    domains: list[str]
    phone_prefixes: list[tuple[int, str, int]]  # (country code, leading digits, digits to add)

    @property
    def tag(self) -> str:
        """BCP 47 language tag (``es-ES``)."""
        return self.locale.replace("_", "-")

    @property
    def two_surnames(self) -> bool:
        """Spanish-speaking customers often carry both surnames."""
        return self.locale.startswith("es")


@functools.lru_cache(maxsize=100_000)
def _ascii_slug(text: str) -> str:
    """``José María`` -> ``josemaria`` (email local parts are ASCII in practice)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


def _phone_templates(region: str, rng: random.Random) -> list[tuple[int, str, int]]:
    """Valid number ranges of ``region``: (country code, leading digits, digits to add).

    Random numbers around the region's example numbers are validated with libphonenumber
    once; a row then takes a template's leading digits and four random ones, which keeps
    it valid (validity is decided by the leading digits and the length) and cheap.
    """
    templates: set[tuple[int, str, int]] = set()
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        national = str(example.national_number)
        keep = min(2, len(national) - 5)
        for _ in range(3000):
            candidate = national[:keep] + str(rng.randrange(10 ** (len(national) - keep))).zfill(
                len(national) - keep
            )
            number = phonenumbers.PhoneNumber(
                country_code=example.country_code, national_number=int(candidate)
            )
            if phonenumbers.is_valid_number(number) and str(number.national_number) == candidate:
                templates.add((example.country_code, candidate[:-4], 4))
    return sorted(templates)


def build_pools(seed: int) -> list[LocalePool]:
    """Sample Faker once per locale (draws keep Faker's name frequencies)."""
    pools = []
    for index, (locale, (region, tz)) in enumerate(LOCALES.items()):
        fake = Faker(locale)
        fake.seed_instance(seed + index)
        pools.append(
            LocalePool(
                locale=locale,
                region=region,
                timezone=tz,
                male=[fake.first_name_male() for _ in range(3000)],
                female=[fake.first_name_female() for _ in range(3000)],
                last=[fake.last_name() for _ in range(5000)],
                domains=[fake.free_email_domain() for _ in range(150)]
                + [fake.domain_name() for _ in range(30)],
                phone_prefixes=_phone_templates(region, random.Random(seed + index)),
            )
        )
    return pools


class Generator:
    """Deterministic stream of customer rows and their identity rows."""

    def __init__(
        self,
        total: int,
        seed: int,
        pools: list[LocalePool],
        now: datetime,
        part: int = 0,
        parts: int = 1,
    ) -> None:
        self.total = total
        shared = random.Random(seed)  # the same in every part: tenants and their apps
        self.pools = pools
        tenants = [i % common.TENANT_COUNT for i in range(total)]
        shared.shuffle(tenants)
        self.tenants = tenants
        self.part, self.parts = part, parts
        self.emails: list[set[str]] = [set() for _ in common.TENANTS]
        self.phones: list[set[str]] = [set() for _ in common.TENANTS]
        self.psids: list[set[str]] = [set() for _ in common.TENANTS]
        # Two Meta apps per tenant (a Facebook page app and an Instagram one).
        self.apps = [
            (str(shared.randrange(10**14, 10**15)), str(shared.randrange(10**14, 10**15)))
            for _ in common.TENANTS
        ]
        self.rng = random.Random(seed * 1000 + part)
        self.end = now - timedelta(days=1)
        self.start = self.end - timedelta(days=3 * 365)
        self.step_ns = int((self.end - self.start).total_seconds() * 1e9) // max(total, 1)
        self.start_ns = int(self.start.timestamp() * 1e9)

    def _pick(self, seq: Any) -> Any:
        """``rng.choice`` without its overhead (it is called ~20 times a row)."""
        return seq[int(self.rng.random() * len(seq))]

    def _below(self, n: int) -> int:
        return int(self.rng.random() * n)

    def _email(self, tenant: int, first: str, last: str, pool: LocalePool) -> str:
        rand, below = self.rng.random, self._below
        f, la = _ascii_slug(first) or "cliente", _ascii_slug(last) or "mail"
        shape = rand()
        if shape < 0.35:
            local = f"{f}.{la}"
        elif shape < 0.55:
            local = f"{f}{la}{1 + below(99)}"
        elif shape < 0.7:
            local = f"{f[0]}{la}"
        elif shape < 0.85:
            local = f"{f}_{la}{60 + below(40)}"
        else:
            local = f"{f}{100 + below(9900)}"
        domain = self._pick(pool.domains)
        email = f"{local}@{domain}"
        seen = self.emails[tenant]
        while email in seen:
            email = f"{local}{1 + below(99999)}@{domain}"
        seen.add(email)
        return email

    def _phone(self, tenant: int, pool: LocalePool) -> str | None:
        seen = self.phones[tenant]
        for _ in range(10):
            code, prefix, digits = self._pick(pool.phone_prefixes)
            e164 = f"+{code}{prefix}{self._below(10**digits):0{digits}d}"
            if e164 not in seen:
                seen.add(e164)
                return e164
        return None

    def _psid(self, tenant: int) -> str:
        seen = self.psids[tenant]
        while True:
            psid = str(10**15 + self.rng.getrandbits(56) % (8 * 10**16))
            if psid not in seen:
                seen.add(psid)
                return psid

    def rows(self, first: int, count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Customer and identity rows among row numbers ``first .. first + count - 1``
        whose tenant belongs to this part (tenant number modulo ``parts``)."""
        rand, pick, below = self.rng.random, self._pick, self._below
        customers: list[tuple[Any, ...]] = []
        identities: list[tuple[Any, ...]] = []
        now = self.end + timedelta(days=1)
        day = timedelta(days=1)
        for i in range(first, min(first + count, self.total)):
            t = self.tenants[i]
            if t % self.parts != self.part:
                continue
            tenant = common.TENANTS[t]
            pool = self.pools[t] if rand() < 0.7 else pick(self.pools)
            created_ns = self.start_ns + i * self.step_ns + below(self.step_ns or 1)
            created = datetime.fromtimestamp(created_ns / 1e9, UTC)
            customer_id = uuid.UUID(bytes=uuid_utils.uuid7(nanoseconds=created_ns).bytes)
            g = rand()
            gender = "male" if g < 0.48 else "female" if g < 0.96 else None
            first_name = pick(pool.male if gender == "male" else pool.female)
            last_name = pick(pool.last)
            if pool.two_surnames and rand() < 0.4:
                last_name = f"{last_name} {pick(pool.last)}"
            has_psid = rand() < 0.8
            email = (
                self._email(t, first_name, last_name, pool)
                if rand() < 0.85 or not has_psid
                else None
            )
            phone = self._phone(t, pool) if rand() < 0.6 else None
            psid = app_id = platform = profile_pic = last_interaction = None
            if has_psid:
                psid = self._psid(t)
                fb_app, ig_app = self.apps[t]
                platform, app_id = ("instagram", ig_app) if rand() < 0.55 else ("facebook", fb_app)
                if rand() < 0.7:
                    profile_pic = (
                        f"https://platform-lookaside.fbsbx.com/platform/profilepic/?psid={psid}"
                    )
            else:
                platform = "web" if rand() < 0.5 else None
            if has_psid or rand() < 0.3:
                last_interaction = created + (now - created) * rand()
            s = rand()
            status = "ACTIVE" if s < 0.93 else "INACTIVE" if s < 0.98 else "BLOCKED"
            blocked_at = created + day * (1 + below(29)) if status == "BLOCKED" else None
            c = rand()
            customer_type = "RETAIL" if c < 0.85 else "WHOLESALE" if c < 0.95 else "VIP"
            n_tags = pick((0, 0, 0, 1, 1, 2, 3))
            tags = self.rng.sample(TAGS, n_tags) if n_tags else []
            deleted_at = created + day * (1 + below(89)) if rand() < 0.01 else None
            updated = max(
                x for x in (created, last_interaction, blocked_at, deleted_at) if x is not None
            )
            birth = BIRTH_MIN + day * below(20_800) if rand() < 0.4 else None
            customers.append(
                (
                    customer_id, tenant, email, phone, first_name, last_name, gender, birth,
                    pool.tag, pool.timezone if rand() < 0.8 else None, profile_pic, status,
                    customer_type, platform, app_id, psid, "{}", rand() < 0.35, tags,
                    pick(ATTRIBUTES) if rand() < 0.3 else "{}",
                    pick(PREFERENCES) if rand() < 0.2 else "{}",
                    last_interaction, blocked_at, "spam" if blocked_at else None,
                    1 + (rand() < 0.3) * (1 + below(5)), deleted_at, created, updated,
                )
            )  # fmt: skip
            keys = []
            if email:
                keys.append(("email", "", email.lower()))
            if phone:
                keys.append(("phone", "", phone))
            if psid:
                keys.append(("psid", app_id, psid))
            for kind, namespace, value in keys:
                identity_id = uuid.UUID(bytes=uuid_utils.uuid7(nanoseconds=created_ns).bytes)
                identities.append(
                    (
                        identity_id,
                        tenant,
                        customer_id,
                        kind,
                        namespace,
                        value,
                        deleted_at,
                        created,
                        created,
                    )
                )
        return customers, identities


def copy_part(url: str, total: int, seed: int, now: datetime, part: int, parts: int) -> int:
    """Generate and COPY the rows of one part (run in a worker process); returns its count."""
    return asyncio.run(_copy_part(url, total, seed, now, part, parts))


async def _copy_part(url: str, total: int, seed: int, now: datetime, part: int, parts: int) -> int:
    generator = Generator(total, seed, build_pools(seed), now, part, parts)
    conn = await asyncpg.connect(common.dsn(url))
    started = time.perf_counter()
    done = 0
    try:
        # Superuser load: skip the per-row FK trigger (rows are consistent by construction).
        await conn.execute("SET session_replication_role = replica")
        for first in range(0, total, CHUNK):
            customers, identities = generator.rows(first, CHUNK)
            await conn.copy_records_to_table(
                "customers", records=customers, columns=CUSTOMER_COLUMNS
            )
            await conn.copy_records_to_table(
                "customer_identities", records=identities, columns=IDENTITY_COLUMNS
            )
            done += len(customers)
            if part == 0:
                rate = done * parts / (time.perf_counter() - started)
                print(f"  ~{done * parts:>9,} customers  ({rate:,.0f}/s)", flush=True)
    finally:
        await conn.close()
    return done


# -- database ------------------------------------------------------------------------------


async def _load_state(url: str) -> dict[str, str] | None:
    """The ``bench_meta`` of a complete load, or None (no database, or an unfinished load)."""
    server = await asyncpg.connect(common.server_dsn(url))
    try:
        exists = await server.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", common.database_name(url)
        )
    finally:
        await server.close()
    if not exists:
        return None
    conn = await asyncpg.connect(common.dsn(url))
    try:
        if await conn.fetchval("SELECT to_regclass('bench_meta')") is None:
            return None
        rows = await conn.fetch("SELECT key, value FROM bench_meta")
    finally:
        await conn.close()
    meta = {r["key"]: r["value"] for r in rows}
    return meta if meta.get("complete") == "yes" else None


async def _recreate_database(url: str) -> None:
    name = common.database_name(url)
    server = await asyncpg.connect(common.server_dsn(url))
    try:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()


async def _secondary_indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "JOIN pg_class c ON c.relname = i.indexname "
        "JOIN pg_index x ON x.indexrelid = c.oid "
        "WHERE i.schemaname = 'public' AND i.tablename IN ('customers', 'customer_identities') "
        "AND NOT x.indisprimary ORDER BY i.indexname"
    )
    return [(r["indexname"], r["indexdef"]) for r in rows]


async def _copy_all(url: str, total: int, seed: int) -> datetime:
    """Generate and COPY every row; returns the load time (new rows are created after it)."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(common.dsn(url))
    try:
        indexes = await _secondary_indexes(conn)
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        # Two processes generate and COPY disjoint sets of tenants, both in time order.
        parts = 2
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(max_workers=parts) as workers:
            counts = await asyncio.gather(
                *(
                    loop.run_in_executor(workers, copy_part, url, total, seed, now, p, parts)
                    for p in range(parts)
                )
            )
        if sum(counts) != total:
            raise RuntimeError(f"loaded {sum(counts)} customers, expected {total}")
        print("rebuilding indexes ...", flush=True)
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        for name, definition in indexes:
            t0 = time.perf_counter()
            await conn.execute(definition)
            print(f"  {name}: {time.perf_counter() - t0:.1f}s", flush=True)
        print("vacuum analyse ...", flush=True)
        await conn.execute("VACUUM (ANALYZE) customers")
        await conn.execute("VACUUM (ANALYZE) customer_identities")
    finally:
        await conn.close()
    return now


SAMPLE_SQL = """
CREATE OR REPLACE FUNCTION bench_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
    substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
    FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;
DROP TABLE IF EXISTS bench_ids, bench_upsert_keys, bench_search_terms;
CREATE TABLE bench_ids (n int PRIMARY KEY, id uuid NOT NULL);
CREATE TABLE bench_upsert_keys (
  n int PRIMARY KEY, subset text NOT NULL, app_id text NOT NULL, psid text NOT NULL,
  platform text NOT NULL, first_name text NOT NULL, last_name text NOT NULL);
CREATE TABLE bench_search_terms (n int PRIMARY KEY, kind text NOT NULL, q text NOT NULL);
"""


def search_term(rng: random.Random, row: asyncpg.Record) -> tuple[str, str] | None:
    """A search a person would type to find this customer: (kind, q)."""
    last = row["last_name"]
    pick = rng.random()
    surname = max(last.split(), key=len)  # "Silva", not the particle of "da Silva"
    if pick < 0.30:
        return "surname", surname if rng.random() < 0.5 else _unaccented(surname).lower()
    if pick < 0.45:
        return "prefix", _unaccented(surname)[:4].lower()
    if pick < 0.65:
        return "full_name", f"{row['first_name']} {last}".lower()
    if pick < 0.80 and row["email"]:
        return "email", row["email"].split("@")[0]
    if pick < 0.90 and row["phone"]:
        return "phone", row["phone"][-7:]
    if row["psid"]:
        return "psid", row["psid"][:9]
    return None


def _unaccented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


async def write_samples(url: str, seed: int) -> None:
    """(Re)write the sample tables the measurement draws from (all in ``bench-0``)."""
    rng = random.Random(seed + 1)
    conn = await asyncpg.connect(common.dsn(url))
    try:
        await conn.execute(SAMPLE_SQL)
        live = await conn.fetch(
            "SELECT id, first_name, last_name, email, phone, psid, app_id, platform "
            "FROM customers WHERE tenant_id = $1 AND deleted_at IS NULL AND created_at < "
            "(SELECT value::timestamptz FROM bench_meta WHERE key = 'loaded_at') ORDER BY id",
            common.BENCH_TENANT,
        )
        ids = rng.sample(list(live), min(common.SAMPLE_IDS, len(live)))
        await conn.copy_records_to_table(
            "bench_ids", records=[(n, r["id"]) for n, r in enumerate(ids, 1)], columns=("n", "id")
        )
        with_psid = [r for r in live if r["psid"] and r["platform"] in {"facebook", "instagram"}]
        half = min(common.SAMPLE_UPSERT_KEYS, len(with_psid) // 2)
        keys = rng.sample(with_psid, 2 * half)
        records = [
            (
                n, "change" if n <= half else "same", r["app_id"], r["psid"],
                r["platform"], r["first_name"], r["last_name"],
            )
            for n, r in enumerate(keys, 1)
        ]  # fmt: skip
        await conn.copy_records_to_table("bench_upsert_keys", records=records)
        terms: list[tuple[int, str, str]] = []
        for row in rng.sample(list(live), min(4 * common.SAMPLE_SEARCH_TERMS, len(live))):
            term = search_term(rng, row)
            if term is not None and len(terms) < common.SAMPLE_SEARCH_TERMS:
                kind, q = term
                terms.append((len(terms) + 1, kind, q))
        await conn.copy_records_to_table("bench_search_terms", records=terms)
        await conn.execute(
            "ANALYZE bench_ids; ANALYZE bench_upsert_keys; ANALYZE bench_search_terms"
        )
    finally:
        await conn.close()


async def _set_meta(url: str, key: str, value: str) -> None:
    conn = await asyncpg.connect(common.dsn(url))
    try:
        await conn.execute(
            "INSERT INTO bench_meta VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
            key,
            value,
        )
    finally:
        await conn.close()


async def load(url: str, customers: int, reload: bool, seed: int = SEED) -> dict[str, str]:
    """Make sure ``url`` holds a complete load of ``customers`` rows; returns its metadata."""
    meta = None if reload else await _load_state(url)
    if meta is not None and int(meta["customers"]) == customers and meta.get("seed") == str(seed):
        loaded = f"{customers:,} customers, {meta['loaded_at']}"
        print(f"database already loaded ({loaded}); --reload to rebuild")
        # Patron's schema may have moved on since: bring it to head (new indexes included).
        await asyncio.to_thread(upgrade, url)
        if meta.get("samples") != SAMPLES_VERSION:
            await write_samples(url, seed)
            await _set_meta(url, "samples", SAMPLES_VERSION)
            meta["samples"] = SAMPLES_VERSION
        return meta
    print(f"creating {common.database_name(url)} and applying migrations ...", flush=True)
    await _recreate_database(url)
    await asyncio.to_thread(upgrade, url)
    started = time.perf_counter()
    print(f"loading {customers:,} customers across {common.TENANT_COUNT} tenants ...", flush=True)
    loaded_at = await _copy_all(url, customers, seed)
    conn = await asyncpg.connect(common.dsn(url))
    try:
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM customers) AS customers, "
            "(SELECT count(*) FROM customer_identities) AS identities, "
            "pg_size_pretty(pg_total_relation_size('customers')) AS customers_size, "
            "pg_size_pretty(pg_total_relation_size('customer_identities')) AS identities_size"
        )
        meta = {
            "customers": str(customers),
            "seed": str(seed),
            "loaded_at": loaded_at.isoformat(),
            "load_seconds": f"{time.perf_counter() - started:.0f}",
            "counts": json.dumps(dict(counts)),
        }
        await conn.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        await conn.executemany("INSERT INTO bench_meta VALUES ($1, $2)", list(meta.items()))
    finally:
        await conn.close()
    await write_samples(url, seed)
    await _set_meta(url, "samples", SAMPLES_VERSION)
    await _set_meta(url, "complete", "yes")
    meta.update(samples=SAMPLES_VERSION, complete="yes")
    print(f"loaded in {meta['load_seconds']}s: {dict(counts)}", flush=True)
    return meta


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--customers", type=int, default=1_000_000, help="rows to load (default 1,000,000)"
    )
    parser.add_argument("--reload", action="store_true", help="drop and rebuild the database")
    args = parser.parse_args()
    asyncio.run(load(common.database_url(), args.customers, args.reload))


if __name__ == "__main__":
    main()
