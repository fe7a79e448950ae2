-- Clickstream events, deduplicated, with bot traffic removed once, here, for every consumer.
with ranked as (
    select
        *,
        row_number() over (partition by event_id order by _ingested_at) as copy_rank
    from {{ source('clickstream', 'events') }}
)
select
    event_id,
    user_id,
    event_type,
    event_timestamp as event_ts,
    cast(event_timestamp as date) as event_date,
    properties['page'] as page,
    properties['referrer'] as referrer,
    properties['device'] as device,
    properties['campaign'] as campaign
from ranked
where copy_rank = 1
  and not (lower(coalesce(user_agent, '')) like '%bot%'
        or lower(coalesce(user_agent, '')) like '%crawler%'
        or lower(coalesce(user_agent, '')) like '%spider%')
