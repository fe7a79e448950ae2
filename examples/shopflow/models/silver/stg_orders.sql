-- One row per order: the latest version of each order, exact duplicates removed, types cleaned.
-- Incremental: each run merges only orders that landed since the last build.
{{ config(materialized='incremental', unique_key='order_id') }}

with landed as (
    select *
    from {{ source('shop_app', 'orders') }}
    {% if is_incremental() %}
    where _ingested_at > (select max(_loaded_at) from {{ this }})
    {% endif %}
),
ranked as (
    select
        *,
        row_number() over (partition by order_id order by updated_at desc, _ingested_at desc) as version_rank
    from landed
)
select
    order_id,
    customer_id,
    lower(status) as status,
    amount,
    cast(order_ts as timestamp) as order_ts,
    cast(cast(order_ts as timestamp) as date) as order_date,
    cast(updated_at as timestamp) as updated_at,
    lower(status) in ('cancelled', 'abandoned') as is_cancelled_or_abandoned,
    _ingested_at as _loaded_at
from ranked
where version_rank = 1
