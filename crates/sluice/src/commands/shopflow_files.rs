//! The ShopFlow example project, embedded in the binary so that `sluice demo` works from anywhere.
//! Generated from `examples/shopflow/`; the test `embedded_example_matches_folder` keeps them in step.

/// (relative path, contents) of every project file.
pub const SHOPFLOW_FILES: &[(&str, &str)] = &[
    ("models/gold/daily_active_users.sql", include_str!("../../../../examples/shopflow/models/gold/daily_active_users.sql")),
    ("models/gold/daily_sales_by_category.sql", include_str!("../../../../examples/shopflow/models/gold/daily_sales_by_category.sql")),
    ("models/gold/mart_revenue.sql", include_str!("../../../../examples/shopflow/models/gold/mart_revenue.sql")),
    ("models/gold/schema.yml", include_str!("../../../../examples/shopflow/models/gold/schema.yml")),
    ("models/gold/user_activity_features.sql", include_str!("../../../../examples/shopflow/models/gold/user_activity_features.sql")),
    ("models/silver/dim_customer.sql", include_str!("../../../../examples/shopflow/models/silver/dim_customer.sql")),
    ("models/silver/fct_orders.sql", include_str!("../../../../examples/shopflow/models/silver/fct_orders.sql")),
    ("models/silver/schema.yml", include_str!("../../../../examples/shopflow/models/silver/schema.yml")),
    ("models/silver/stg_customers.sql", include_str!("../../../../examples/shopflow/models/silver/stg_customers.sql")),
    ("models/silver/stg_events.sql", include_str!("../../../../examples/shopflow/models/silver/stg_events.sql")),
    ("models/silver/stg_orders.sql", include_str!("../../../../examples/shopflow/models/silver/stg_orders.sql")),
    ("sluice.yml", include_str!("../../../../examples/shopflow/sluice.yml")),
    ("sources/clickstream.yml", include_str!("../../../../examples/shopflow/sources/clickstream.yml")),
    ("sources/crm.yml", include_str!("../../../../examples/shopflow/sources/crm.yml")),
    ("sources/shop_app.yml", include_str!("../../../../examples/shopflow/sources/shop_app.yml")),
];
