-- The executive dashboard: daily active users by acquisition channel and device.
select
    e.event_date,
    coalesce(c.acquisition_channel, 'unknown') as acquisition_channel,
    coalesce(e.device, 'unknown') as device,
    count(distinct e.user_id) as active_users,
    count(*) as events
from {{ ref('stg_events') }} e
left join {{ ref('stg_customers') }} c on c.customer_id = e.user_id
where e.user_id is not null
group by e.event_date, coalesce(c.acquisition_channel, 'unknown'), coalesce(e.device, 'unknown')
