//! The one paginator of every list: a page (number, size, sort key, direction), the sort
//! applied to a boxed query with the row id as tie-break, and the exact total beside the
//! rows of the page, in the same query (`COUNT(*) OVER ()`, as crates.io's
//! `controllers/helpers/pagination.rs` does).
//!
//! Validating the caller's page parameters (bounds, allowed sort keys, error messages) is
//! the service's business (`service::list`); here a page is taken as given.
use diesel::dsl::{sql, Asc, CountStar, Desc};
use diesel::expression::SqlLiteral;
use diesel::query_dsl::methods::{LimitDsl, OffsetDsl, OrderDsl, SelectDsl};
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::BigInt;
use diesel::{ExpressionMethods, QueryDsl, QueryResult, RunQueryDsl};

use super::AnyConnection;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// One page of a list: 1-based page number, rows per page, sort key (None: the list's
/// default) and direction.
#[derive(Debug, Clone)]
pub struct Page {
    pub page: i64,
    pub size: i64,
    pub sort: Option<String>,
    pub desc: bool,
}

impl Default for Page {
    fn default() -> Self {
        Page { page: 1, size: DEFAULT_PAGE_SIZE, sort: None, desc: false }
    }
}

/// The rows of one page and how many rows the whole list holds.
pub struct Rows<T> {
    pub rows: Vec<T>,
    pub total: i64,
}

impl Page {
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.size
    }

    /// The sort key, if one was asked for.
    pub fn key(&self) -> Option<&str> {
        self.sort.as_deref()
    }

    /// Orders `q` by `col`, then by `id` so that ties keep a stable order, both in the
    /// page's direction.
    pub fn order<Q, C, I>(&self, q: Q, col: C, id: I) -> Q
    where
        C: ExpressionMethods,
        I: ExpressionMethods,
        Q: OrderDsl<(Asc<C>, Asc<I>), Output = Q> + OrderDsl<(Desc<C>, Desc<I>), Output = Q>,
    {
        if self.desc {
            OrderDsl::order(q, (col.desc(), id.desc()))
        } else {
            OrderDsl::order(q, (col.asc(), id.asc()))
        }
    }

    /// Loads this page of the rows `query()` matches, in the order `sort` applies (usually
    /// through [`Page::order`]), with the exact total in the same query: `query` builds the
    /// filtered, boxed query selecting `(row, total())`, the window `COUNT(*) OVER ()`
    /// being evaluated before LIMIT/OFFSET (SQLite ≥ 3.25, PostgreSQL). A page past the end
    /// has no row to carry the total: then, and only then, a second query counts.
    pub fn load<'q, Q, U>(
        &self,
        conn: &mut AnyConnection,
        query: impl Fn() -> Q,
        sort: impl FnOnce(Q) -> Q,
    ) -> QueryResult<Rows<U>>
    where
        Q: QueryDsl + RunQueryDsl<AnyConnection> + LimitDsl<Output = Q> + OffsetDsl<Output = Q>,
        Q: SelectDsl<CountStar> + LoadQuery<'q, AnyConnection, (U, i64)>,
        <Q as SelectDsl<CountStar>>::Output: RunQueryDsl<AnyConnection> + LoadQuery<'q, AnyConnection, i64>,
    {
        let page = OffsetDsl::offset(LimitDsl::limit(sort(query()), self.size), self.offset());
        let rows: Vec<(U, i64)> = page.load(conn)?;
        let total = match rows.first() {
            Some((_, total)) => *total,
            None if self.offset() > 0 => QueryDsl::count(query()).get_result(conn)?,
            None => 0,
        };
        Ok(Rows { rows: rows.into_iter().map(|(row, _)| row).collect(), total })
    }
}

/// The column every list query selects beside its rows: how many rows the filtered query
/// matches, whatever the page (see [`Page::load`]).
pub fn total() -> SqlLiteral<BigInt> {
    sql::<BigInt>("COUNT(*) OVER ()")
}
