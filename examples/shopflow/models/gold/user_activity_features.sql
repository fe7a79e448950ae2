-- The feature-store table: one row per user, as of the newest event.
with as_of as (
    select max(event_ts) as as_of_ts from {{ ref('stg_events') }}
),
events as (
    select e.*, a.as_of_ts
    from {{ ref('stg_events') }} e
    cross join as_of a
    where e.user_id is not null
)
select
    user_id,
    sum(case when event_type in ('page_view', 'product_view') and event_ts > as_of_ts - interval '7 days' then 1 else 0 end) as views_7d,
    sum(case when event_type in ('page_view', 'product_view') and event_ts > as_of_ts - interval '30 days' then 1 else 0 end) as views_30d,
    sum(case when event_type in ('page_view', 'product_view') and event_ts > as_of_ts - interval '90 days' then 1 else 0 end) as views_90d,
    max(event_ts) as last_active_at,
    round(avg(case when device = 'mobile' then 1.0 else 0.0 end), 4) as mobile_ratio,
    max(as_of_ts) as feature_ts
from events
group by user_id
