-- One row per customer, with the CRM segment when the customer has an account.
with customers as (
    select
        *,
        row_number() over (partition by customer_id order by updated_at desc) as version_rank
    from {{ source('shop_app', 'customers') }}
),
accounts as (
    select
        customer_id,
        segment,
        row_number() over (partition by customer_id order by created_at desc, account_id desc) as account_rank
    from {{ source('crm', 'accounts') }}
)
select
    c.customer_id,
    c.email as email_hash,
    c.country,
    lower(c.acquisition_channel) as acquisition_channel,
    cast(c.created_at as timestamp) as created_at,
    coalesce(a.segment, 'consumer') as segment
from customers c
left join accounts a on a.customer_id = c.customer_id and a.account_rank = 1
where c.version_rank = 1
