//! Query execution apart from the server's I/O: a runtime of its own, cancellation on drop, and a
//! memory budget per query inside one budget for the process.
//!
//! DataFusion runs a plan on whatever tokio runtime polls its stream. In a server that is the runtime
//! that also accepts connections and answers `/api/health`, so two CPU-bound queries on a two-core
//! machine froze everything else. Every plan the engine builds is therefore wrapped in
//! [`IsolatedExec`] (by [`IsolatingPlanner`], the session's query planner): its partitions run as
//! tasks of the [`query_runtime`], whose threads also have large stacks, and reach the caller through
//! a small channel. Dropping the stream (a client that left, a timeout, a cancel) aborts the task, so
//! the work stops at its next yield point and its memory is released.
//!
//! Memory: the session's pool ([`EngineOptions::memory_limit`]) is shared by every query and model
//! build of the process; [`QueryMemoryPool`] caps what one query may hold of it
//! ([`EngineOptions::query_memory_limit`]). Sorts, aggregations and joins that can spill do so (to
//! the OS temporary folder) when they hit either limit; what cannot spill fails with DataFusion's
//! "Resources exhausted" error instead of taking the process down.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::analyzer::AnalyzerRule;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use futures::StreamExt;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Stack size of the query runtime's threads (and, by the binary, of its main runtime's): deep enough
/// for every plan the SQL guard of `sluice-transform` (`guard::DEFAULT_MAX_EXPR_DEPTH`) allows. Only touched pages are committed.
pub const QUERY_THREAD_STACK: usize = 64 << 20;

/// Batches buffered between a running partition and its reader: enough to overlap work and
/// sending, small enough that a slow reader pauses the query instead of growing memory.
const CHANNEL_BATCHES: usize = 2;

/// The runtime every query and model build executes on (created on first use, one per process).
pub fn query_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("sluice-query")
            .thread_stack_size(QUERY_THREAD_STACK)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            // Without threads nothing can run at all; there is no better recovery than saying so.
            Err(e) => panic!("cannot start the query runtime: {e}"),
        }
    })
}

/// Memory settings of an engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Bytes all queries and builds of the process may hold together (`None`: unbounded).
    pub memory_limit: Option<usize>,
    /// Bytes one query may hold (`None`: only the process limit).
    pub query_memory_limit: Option<usize>,
}

/// The session's query planner: DataFusion's, with every plan wrapped in [`IsolatedExec`].
#[derive(Debug, Default)]
pub struct IsolatingPlanner {
    query_memory_limit: Option<usize>,
}

impl IsolatingPlanner {
    /// A planner whose queries may each hold `query_memory_limit` bytes of the session's pool.
    pub fn new(query_memory_limit: Option<usize>) -> Self {
        Self { query_memory_limit }
    }
}

#[async_trait]
impl QueryPlanner for IsolatingPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = DefaultPhysicalPlanner::default()
            .create_physical_plan(logical_plan, session_state)
            .await?;
        Ok(Arc::new(IsolatedExec::new(
            cooperative(plan)?,
            self.query_memory_limit,
        )))
    }
}

/// Largest single value a string- or list-building function may be asked to make.
pub const MAX_VALUE_BYTES: i64 = 64 << 20;

/// The analyzer rule that refuses calls building one enormous value (`repeat('x', 2000000000)`,
/// `lpad(s, 1e10)`, `range(1, 1e12)`).
///
/// The memory pool bounds what operators hold, not what a function allocates for one value: such a
/// call per row of a table asks the allocator for gigabytes, and a failed allocation aborts the
/// process. It runs before the optimizer, which would otherwise evaluate a constant call while
/// folding it.
#[derive(Debug, Default)]
pub struct ValueSizeRule;

impl AnalyzerRule for ValueSizeRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        check_value_sizes(&plan)?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "sluice_value_size"
    }
}

fn check_value_sizes(plan: &LogicalPlan) -> DfResult<()> {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::Expr;
    let int = |e: &Expr| match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Int64(Some(n)) => Some(*n),
            ScalarValue::Int32(Some(n)) => Some(i64::from(*n)),
            ScalarValue::Int16(Some(n)) => Some(i64::from(*n)),
            ScalarValue::Int8(Some(n)) => Some(i64::from(*n)),
            ScalarValue::UInt64(Some(n)) => Some(i64::try_from(*n).unwrap_or(i64::MAX)),
            ScalarValue::UInt32(Some(n)) => Some(i64::from(*n)),
            _ => None,
        },
        _ => None,
    };
    let text_len = |e: &Expr| match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(t))
            | ScalarValue::Utf8View(Some(t))
            | ScalarValue::LargeUtf8(Some(t)),
            _,
        ) => i64::try_from(t.len()).unwrap_or(i64::MAX).max(1),
        _ => 1,
    };
    let refuse = |name: &str, size: i64| {
        Err(DataFusionError::ResourcesExhausted(format!(
            "`{name}` would build a value of {size} bytes or elements; at most {MAX_VALUE_BYTES} are \
             allowed in one value"
        )))
    };
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    let name = f.func.name();
                    let size = match (name, f.args.as_slice()) {
                        ("repeat", [s, n]) => int(n).map(|n| n.saturating_mul(text_len(s))),
                        ("lpad" | "rpad", [_, n, ..]) => int(n),
                        ("array_repeat", [_, n]) => int(n),
                        ("range" | "generate_series", [start, stop, rest @ ..]) => {
                            match (int(start), int(stop)) {
                                (Some(a), Some(b)) => {
                                    let step = rest.first().and_then(int).unwrap_or(1).max(1);
                                    Some(b.saturating_sub(a) / step)
                                }
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    if let Some(size) = size.filter(|s| *s > MAX_VALUE_BYTES) {
                        return refuse(name, size);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })
    .map(|_| ())
}

/// Makes every operator's output spend tokio's task budget per batch.
///
/// An aborted task stops only when it yields. DataFusion makes leaf scans cooperative, but an
/// operator that produces many batches from data it already holds (a cross join over its build side,
/// a sort's merge) can run for minutes without yielding, so a cancelled query kept its cores busy.
/// With every output cooperative, each task yields at least every 128 batches.
fn cooperative(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if node.is::<CooperativeExec>() {
            return Ok(Transformed::no(node));
        }
        Ok(Transformed::yes(
            Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
        ))
    })
    .map(|t| t.data)
}

/// Runs its input on the [`query_runtime`], under a per-query memory cap (see the module doc).
#[derive(Debug)]
pub struct IsolatedExec {
    input: Arc<dyn ExecutionPlan>,
    query_memory_limit: Option<usize>,
    /// One pool per query, shared by its partitions (made at the first `execute`).
    pool: OnceLock<Arc<dyn MemoryPool>>,
}

impl IsolatedExec {
    /// Wraps `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>, query_memory_limit: Option<usize>) -> Self {
        Self {
            input,
            query_memory_limit,
            pool: OnceLock::new(),
        }
    }

    /// The wrapped plan.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    fn context_for(&self, context: Arc<TaskContext>) -> DfResult<Arc<TaskContext>> {
        let Some(limit) = self.query_memory_limit else {
            return Ok(context);
        };
        let pool = self
            .pool
            .get_or_init(|| {
                Arc::new(QueryMemoryPool::new(context.memory_pool().clone(), limit))
                    as Arc<dyn MemoryPool>
            })
            .clone();
        let runtime = RuntimeEnvBuilder::from_runtime_env(&context.runtime_env())
            .with_memory_pool(pool)
            .build_arc()?;
        let task = TaskContext::new(
            context.task_id(),
            context.session_id(),
            context.session_config().clone(),
            context.scalar_functions().clone(),
            context.higher_order_functions().clone(),
            context.aggregate_functions().clone(),
            context.window_functions().clone(),
            runtime,
        );
        Ok(Arc::new(task))
    }
}

impl DisplayAs for IsolatedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.query_memory_limit {
            Some(limit) => write!(f, "IsolatedExec: query_memory_limit={limit}"),
            None => write!(f, "IsolatedExec"),
        }
    }
}

impl ExecutionPlan for IsolatedExec {
    fn name(&self) -> &str {
        "IsolatedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "IsolatedExec has one child, got {}",
                children.len()
            )));
        }
        Ok(Arc::new(IsolatedExec::new(
            children.swap_remove(0),
            self.query_memory_limit,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let context = self.context_for(context)?;
        let input = self.input.clone();
        let schema = input.schema();
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let task = query_runtime().spawn(async move {
            let mut stream = match input.execute(partition, context) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            while let Some(item) = stream.next().await {
                let failed = item.is_err();
                // The reader is gone: stop.
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let abort = AbortOnDrop(task);
        let batches = futures::stream::unfold((rx, abort), |(mut rx, abort)| async move {
            let item = rx.recv().await?;
            Some((item, (rx, abort)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// Aborts a task when dropped: the stream that reads a query owns the query.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A view of a shared pool that lets one query hold at most `limit` bytes of it.
#[derive(Debug)]
pub struct QueryMemoryPool {
    inner: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl QueryMemoryPool {
    /// Caps `inner` at `limit` bytes for the reservations made through this pool.
    pub fn new(inner: Arc<dyn MemoryPool>, limit: usize) -> Self {
        Self {
            inner,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl fmt::Display for QueryMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query pool: {} of {} bytes, within {}",
            self.used.load(Ordering::Relaxed),
            self.limit,
            self.inner
        )
    }
}

impl MemoryPool for QueryMemoryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let reserved = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(additional).filter(|n| *n <= self.limit)
            });
        if reserved.is_err() {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the query needs more than its memory limit of {} MB ({} MB held, {} more asked \
                 for by {})",
                self.limit >> 20,
                self.used.load(Ordering::Relaxed) >> 20,
                additional >> 20,
                reservation.consumer().name()
            )));
        }
        if let Err(e) = self.inner.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    use super::*;

    #[test]
    fn a_query_pool_caps_its_reservations_within_the_shared_pool() {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let q1: Arc<dyn MemoryPool> = Arc::new(QueryMemoryPool::new(shared.clone(), 600));
        let q2: Arc<dyn MemoryPool> = Arc::new(QueryMemoryPool::new(shared.clone(), 600));
        let r1 = MemoryConsumer::new("a").register(&q1);
        r1.try_grow(500).unwrap();
        let e = r1.try_grow(200).unwrap_err().to_string();
        assert!(e.contains("memory limit"), "{e}");
        assert_eq!(q1.reserved(), 500);
        let r2 = MemoryConsumer::new("b").register(&q2);
        // The shared budget (1000) refuses what q2's own cap (600) would allow.
        assert!(r2.try_grow(600).is_err());
        assert_eq!(q2.reserved(), 0);
        r2.try_grow(400).unwrap();
        drop(r1);
        assert_eq!(q1.reserved(), 0);
        assert_eq!(shared.reserved(), 400);
    }
}
