//! `sum` of `BIGINT` values that fails on overflow.
//!
//! DataFusion's `sum(bigint)` returns a `BIGINT` and adds with wrapping arithmetic, so a sum beyond
//! ±9.2·10¹⁸ comes out as a wrong figure. BigQuery and Spark (ANSI) fail the query there; PostgreSQL,
//! DuckDB and Snowflake return a wider type (`NUMERIC`, `HUGEINT`, `NUMBER(38,0)`) with the exact sum.
//! [`CheckedSum`] keeps DataFusion's `BIGINT` result (a model's column types stay what they were) and
//! fails instead of wrapping: where the warehouse has a figure Sluice has none, but never another one.
//! It has a grouped accumulator (the hash aggregation path, as fast as the built-in one) and a
//! retracting one (sliding window frames).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Int64Type};
use sluice_engine::extension::NullState;
use sluice_engine::extension::logical_expr::function::AccumulatorArgs;
use sluice_engine::extension::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, ReversedUDAF,
    Signature, Volatility,
};
use sluice_engine::{DataFusionError, DfResult, ScalarValue};

/// The replacement of `sum` over `BIGINT`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CheckedSum {
    signature: Signature,
}

impl Default for CheckedSum {
    fn default() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        }
    }
}

impl CheckedSum {
    /// The function, shared by every rewritten `sum`.
    pub fn udaf() -> Arc<AggregateUDF> {
        Arc::new(AggregateUDF::from(CheckedSum::default()))
    }
}

fn overflow() -> DataFusionError {
    DataFusionError::Execution(
        "integer overflow: sum(...) of BIGINT values is out of range; the project's dialect fails \
         the query where DataFusion would wrap around (cast the argument to DECIMAL(38, 0) for the \
         exact sum)"
            .into(),
    )
}

impl AggregateUDFImpl for CheckedSum {
    fn name(&self) -> &str {
        "sluice_checked_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(SumAccumulator::default()))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(SumGroups::default()))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// One group's sum; `count` tells an empty (NULL) sum from a zero one once values are retracted.
#[derive(Debug, Default)]
struct SumAccumulator {
    sum: i64,
    count: u64,
}

impl SumAccumulator {
    fn add(&mut self, values: &Int64Array) -> DfResult<()> {
        let n = (values.len() - values.null_count()) as u64;
        if n == 0 {
            return Ok(());
        }
        let s = arrow::compute::sum_checked(values)
            .map_err(|_| overflow())?
            .unwrap_or(0);
        self.sum = self.sum.checked_add(s).ok_or_else(overflow)?;
        self.count += n;
        Ok(())
    }
}

fn int64(array: &ArrayRef) -> DfResult<&Int64Array> {
    array
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| DataFusionError::Internal(format!("sum of {}", array.data_type())))
}

impl Accumulator for SumAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        match values.first() {
            Some(v) => self.add(int64(v)?),
            None => Ok(()),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        self.update_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let Some(v) = values.first() else {
            return Ok(());
        };
        let v = int64(v)?;
        let n = (v.len() - v.null_count()) as u64;
        if n == 0 {
            return Ok(());
        }
        let s = arrow::compute::sum_checked(v)
            .map_err(|_| overflow())?
            .unwrap_or(0);
        self.sum = self.sum.checked_sub(s).ok_or_else(overflow)?;
        self.count = self.count.saturating_sub(n);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::Int64((self.count > 0).then_some(self.sum)))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// Sums per group, for hash aggregation.
#[derive(Debug, Default)]
struct SumGroups {
    sums: Vec<i64>,
    nulls: NullState,
}

impl GroupsAccumulator for SumGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        let Some(values) = values.first() else {
            return Ok(());
        };
        let values = int64(values)?;
        self.sums.resize(total_num_groups, 0);
        let mut overflowed = false;
        let sums = &mut self.sums;
        self.nulls.accumulate(
            group_indices,
            values,
            opt_filter,
            total_num_groups,
            |group, value| match sums.get_mut(group) {
                Some(s) => match s.checked_add(value) {
                    Some(v) => *s = v,
                    None => overflowed = true,
                },
                None => overflowed = true,
            },
        );
        if overflowed {
            return Err(overflow());
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let sums = emit_to.take_needed(&mut self.sums);
        let nulls = self.nulls.build(emit_to);
        Ok(Arc::new(Int64Array::new(sums.into(), nulls)))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.update_batch(values, group_indices, None, total_num_groups)
    }

    /// Each row is the sum of itself: its value, NULL where it is NULL or filtered out.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let Some(values) = values.first() else {
            return Ok(vec![]);
        };
        let values = int64(values)?;
        let nulls = match opt_filter {
            None => values.nulls().cloned(),
            Some(filter) => {
                // A NULL filter value drops the row, as FALSE does.
                let keep = match filter.nulls() {
                    Some(n) => n.inner() & filter.values(),
                    None => filter.values().clone(),
                };
                NullBuffer::union(values.nulls(), Some(&NullBuffer::from(keep)))
            }
        };
        Ok(vec![Arc::new(Int64Array::new(
            values.values().clone(),
            nulls,
        ))])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * size_of::<i64>() + self.nulls.size()
    }
}
