//! `init`, `product add|list`, `staff add`: the schema, the catalog and the people.

use serde_json::json;

use super::{open, print_json};
use crate::Context;
use crate::args;
use crate::cli::{ProductAddArgs, StaffAddArgs};
use crate::output::{out, outln};
use crate::table::{Table, money};

/// Opening migrates, so `init` is opening and saying so.
pub async fn init(ctx: &Context) -> anyhow::Result<()> {
    open(ctx).await?;
    if ctx.json {
        print_json(&json!({ "db": ctx.db, "schema": "up to date" }))
    } else {
        outln!("{}: schema up to date", ctx.db)?;
        Ok(())
    }
}

pub async fn product_add(ctx: &Context, args: &ProductAddArgs) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let store = engine.store();
    // The store would refuse a repeated SKU with the database's words; say it plainly.
    if store.product(&args.sku).await?.is_some() {
        anyhow::bail!("product `{}` already exists", args.sku);
    }
    let product = store
        .add_product(&args.sku, &args.name, args.price, args.stock)
        .await?;
    if ctx.json {
        return print_json(&product);
    }
    outln!(
        "product {} ({}): {}, {} in stock",
        product.sku,
        product.name,
        money(product.price_cents, ""),
        product.on_hand
    )?;
    Ok(())
}

pub async fn product_list(ctx: &Context) -> anyhow::Result<()> {
    let engine = open(ctx).await?;
    let products = engine.store().products().await?;
    if ctx.json {
        return print_json(&products);
    }
    if products.is_empty() {
        outln!("no products")?;
        return Ok(());
    }
    let mut table = Table::new(&["SKU", "NAME", "PRICE", "ON HAND", "RESERVED", "AVAILABLE"])
        .right(&[2, 3, 4, 5]);
    for p in &products {
        table.row(vec![
            p.sku.clone(),
            p.name.clone(),
            money(p.price_cents, ""),
            p.on_hand.to_string(),
            p.reserved.to_string(),
            p.available().to_string(),
        ]);
    }
    out!("{table}")?;
    Ok(())
}

pub async fn staff_add(ctx: &Context, args: &StaffAddArgs) -> anyhow::Result<()> {
    let role = args::staff_role(&args.role)?;
    if args.name.trim().is_empty() || args.name.contains(':') {
        // `--as support:NAME` could not name them.
        return Err(args::UsageError(format!(
            "a staff name is not empty and has no `:`, got `{}`",
            args.name
        ))
        .into());
    }
    let engine = open(ctx).await?;
    let staff = engine.store().add_staff(&args.name, role).await?;
    if ctx.json {
        return print_json(&staff);
    }
    outln!("staff {}: {}", staff.name, staff.role)?;
    Ok(())
}
