//! The command line's shape (clap derive). Values whose validity depends on the
//! machine (events, states, actors, reasons) are plain strings here and are checked
//! in `args`, so that a bad one is a one-line message listing the valid names.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bench::BenchArgs;
use crate::simulate::SimulateArgs;

const AFTER_HELP: &str = "\
Every command except `graph` opens the database and brings its schema up to date first \
(idempotent), so a new `orders.db` works without `init`.

Exit codes: 0 success; 1 refused or failed (one line on stderr naming the rule); \
2 usage error.";

/// The operators' command line for the order service.
#[derive(Parser, Debug)]
#[command(name = "orderctl", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// The database: sqlite://PATH (relative or absolute; created on first use),
    /// sqlite::memory: (gone when the command ends) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "ORDERCTL_DB",
        default_value = "sqlite://orders.db"
    )]
    pub db: String,
    /// The payment processor's journal: its books, shared by every orderctl process on
    /// the same file.
    ///
    /// The processor is a simulator that never declines or fails; it keeps its books
    /// in this file (created on first use), so keep one journal per database.
    /// Default: FILE.processor.jsonl beside a sqlite://FILE database, a temporary file
    /// for sqlite::memory:, and orderctl-processor.jsonl in the current folder for
    /// PostgreSQL. (`simulate` and `bench` use processors of their own.)
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "ORDERCTL_PROCESSOR_JOURNAL"
    )]
    pub processor_journal: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create the schema or bring it up to date.
    Init,
    /// Manage the catalog.
    #[command(subcommand)]
    Product(ProductCmd),
    /// Manage staff and their roles.
    #[command(subcommand)]
    Staff(StaffCmd),
    /// Create, show and change orders.
    #[command(subcommand)]
    Order(OrderCmd),
    /// Put an order's units in parcels and move them through the shipment machine.
    #[command(subcommand)]
    Shipment(ShipmentCmd),
    /// Fire events of the payment machine at an order's payments (partial refunds,
    /// retries, reversed refunds) and read their audit trails.
    #[command(subcommand)]
    Payment(PaymentCmd),
    /// Carrier and payment processor webhooks: keep them once, then apply them (parcels
    /// in the carrier's order, payments compared with the books).
    #[command(subcommand)]
    Inbox(InboxCmd),
    /// Fire an event at an order: the whole transition pipeline, in one transaction.
    Fire(FireArgs),
    /// The events an actor may fire at an order now, and why the others are refused.
    Available(AvailableArgs),
    /// List orders, oldest first.
    List(ListArgs),
    /// Orders per state, per payment status and per fulfillment status.
    Stats,
    /// An order's audit trail.
    History(HistoryArgs),
    /// Fire one event at many orders, each with its own result. Exits 1 when any
    /// order was refused.
    Bulk(BulkArgs),
    /// Check every invariant of the stored data; exits 1 with the findings.
    Verify,
    /// Settle the payments a crash left in doubt, from the processor's books.
    ///
    /// Records authorizations whose answer was lost (voiding those nobody will
    /// capture), completes `pay` where the money was captured, and refunds captures
    /// the shop cannot keep. Running it again changes nothing.
    Reconcile,
    /// Print the compiled order machine's graph (does not open the database).
    Graph(GraphArgs),
    /// Run a simulated shop against the database.
    Simulate(SimulateArgs),
    /// Measure persisted transitions per second.
    Bench(BenchArgs),
}

#[derive(Subcommand, Debug)]
pub enum ProductCmd {
    /// Add a product with its price and stock.
    Add(ProductAddArgs),
    /// List products and their stock.
    List,
}

#[derive(Args, Debug)]
pub struct ProductAddArgs {
    /// The product's unique SKU.
    pub sku: String,
    #[arg(long)]
    pub name: String,
    /// The unit price in cents.
    #[arg(long, value_name = "CENTS", allow_negative_numbers = true)]
    pub price: i64,
    /// Units on hand.
    #[arg(long, value_name = "QTY", allow_negative_numbers = true)]
    pub stock: i64,
}

#[derive(Subcommand, Debug)]
pub enum StaffCmd {
    /// Add a member of staff, or change their role.
    Add(StaffAddArgs),
}

#[derive(Args, Debug)]
pub struct StaffAddArgs {
    pub name: String,
    /// support or admin.
    #[arg(long)]
    pub role: String,
}

#[derive(Subcommand, Debug)]
pub enum OrderCmd {
    /// Create an order in the initial state (and the customer, when new).
    Create(OrderCreateArgs),
    /// An order with its lines, payments, refunds, shipments and refused attempts.
    Show(OrderArg),
    /// Ask the payment processor to authorize the order's total. Exits 1 when the
    /// processor declines or fails (the attempt is recorded either way).
    Authorize(OrderArg),
    /// Replace the order's lines (in pending and confirmed; reservations follow).
    Modify(OrderModifyArgs),
    /// Set the shipping address.
    Address(OrderAddressArgs),
    /// Add a note to the order.
    Note(OrderNoteArgs),
    /// Move some lines into a new child order in the same state.
    Split(OrderSplitArgs),
    /// The warehouse received a returned order's shipped units back.
    ReturnReceived(OrderArg),
}

#[derive(Args, Debug)]
pub struct OrderArg {
    /// The order's id.
    pub order: String,
}

#[derive(Args, Debug)]
pub struct OrderModifyArgs {
    /// The order's id.
    pub order: String,
    /// A line of the new set; repeat for more lines.
    #[arg(long = "item", value_name = "SKU:QTY", required = true)]
    pub items: Vec<String>,
}

#[derive(Args, Debug)]
pub struct OrderAddressArgs {
    /// The order's id.
    pub order: String,
    /// The new shipping address.
    pub address: String,
}

#[derive(Args, Debug)]
pub struct OrderNoteArgs {
    /// The order's id.
    pub order: String,
    /// The note.
    pub text: String,
    /// Who writes it.
    #[arg(long = "as", value_name = "NAME")]
    pub author: String,
}

#[derive(Args, Debug)]
pub struct OrderSplitArgs {
    /// The order's id.
    pub order: String,
    /// A line to move (its id, as `order show` lists it); repeat for more.
    #[arg(long = "line", value_name = "LINE_ID", required = true)]
    pub lines: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ShipmentCmd {
    /// Put units of the order's lines in a parcel (in processing); it starts in
    /// `label_created`.
    Add(ShipmentAddArgs),
    /// Fire an event of the shipment machine at a parcel (pick_up, deliver,
    /// report_lost, ...); the order follows when its parcels call for it.
    Update(ShipmentUpdateArgs),
    /// A parcel's audit trail.
    History(ShipmentArg),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("units").required(true).args(["lines", "all"])))]
pub struct ShipmentAddArgs {
    /// The order's id.
    pub order: String,
    /// Units of a line (its id, as `order show` lists it); repeat for more.
    #[arg(long = "line", value_name = "LINE_ID:QTY")]
    pub lines: Vec<String>,
    /// Every unit not shipped yet.
    #[arg(long, conflicts_with = "lines")]
    pub all: bool,
    /// The carrier's name.
    #[arg(long, value_name = "NAME")]
    pub carrier: String,
    /// The carrier's tracking number.
    #[arg(long, value_name = "T")]
    pub tracking: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShipmentUpdateArgs {
    /// The order's id.
    pub order: String,
    /// The shipment's id.
    pub shipment: String,
    /// An event of the shipment machine, e.g. pick_up.
    pub event: String,
    /// Who fires: carrier, system, support:NAME or admin:NAME.
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: String,
    /// A reason code of the shipment machine, e.g. lost_in_transit.
    #[arg(long, value_name = "CODE")]
    pub reason: Option<String>,
    /// The case that disputes a delivery (`reverse_delivery` needs one).
    #[arg(long, value_name = "REF")]
    pub dispute: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShipmentArg {
    /// The order's id.
    pub order: String,
    /// The shipment's id.
    pub shipment: String,
}

#[derive(Subcommand, Debug)]
pub enum PaymentCmd {
    /// Fire an event of the payment machine at a payment (refund, retry, void,
    /// reverse_refund, ...); the order's payment status follows.
    Update(PaymentUpdateArgs),
    /// A payment's audit trail.
    History(PaymentArg),
}

#[derive(Args, Debug)]
pub struct PaymentUpdateArgs {
    /// The order's id.
    pub order: String,
    /// The payment's id, as `order show` lists it.
    pub payment: String,
    /// An event of the payment machine, e.g. refund.
    pub event: String,
    /// Who fires: processor, system, support:NAME or admin:NAME.
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: String,
    /// A reason code of the payment machine, e.g. goodwill.
    #[arg(long, value_name = "CODE")]
    pub reason: Option<String>,
    /// How much, in cents: a partial refund, or a capture of less than authorized.
    /// Without it, a refund returns all that is left and a capture takes what was
    /// authorized.
    #[arg(long, value_name = "CENTS", allow_negative_numbers = true)]
    pub amount: Option<i64>,
}

#[derive(Args, Debug)]
pub struct PaymentArg {
    /// The order's id.
    pub order: String,
    /// The payment's id.
    pub payment: String,
}

#[derive(Subcommand, Debug)]
pub enum InboxCmd {
    /// Keep webhooks from a JSON file (`-` for stdin): one event object or an array of
    /// them, the carrier's or (with `--source processor`) the payment processor's. An
    /// event received before is reported as a duplicate.
    Receive(InboxReceiveArgs),
    /// Handle every pending webhook: the carrier's events applied to their parcels,
    /// each parcel's in the carrier's order, moving their orders on; then the payment
    /// processor's, each compared with the payment's books. A processor event naming a
    /// payment the shop does not know waits a day after it was received (`reconcile`
    /// may record the payment meanwhile), then is refused.
    Process,
    /// One source's messages and what came of them.
    List(InboxListArgs),
}

/// Who sent a webhook.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InboxSource {
    /// The carrier's tracking events (`CarrierEvent`).
    #[default]
    Carrier,
    /// The payment processor's events (`ProcessorEvent`).
    Processor,
}

#[derive(Args, Debug)]
pub struct InboxReceiveArgs {
    /// The webhook's JSON, or `-` for stdin.
    pub file: String,
    /// Whose webhooks they are.
    #[arg(long, value_enum, default_value_t = InboxSource::Carrier)]
    pub source: InboxSource,
}

#[derive(Args, Debug)]
pub struct InboxListArgs {
    /// Only the messages not processed yet.
    #[arg(long)]
    pub pending: bool,
    /// Whose messages to list.
    #[arg(long, value_enum, default_value_t = InboxSource::Carrier)]
    pub source: InboxSource,
}

#[derive(Args, Debug)]
pub struct OrderCreateArgs {
    #[arg(long, value_name = "EMAIL")]
    pub customer: String,
    /// An order line; repeat for more lines.
    #[arg(long = "item", value_name = "SKU:QTY", required = true)]
    pub items: Vec<String>,
    /// The shipping address.
    #[arg(long)]
    pub address: Option<String>,
}

#[derive(Args, Debug)]
pub struct FireArgs {
    /// The order's id.
    pub order: String,
    /// The event, e.g. confirm.
    pub event: String,
    /// Who fires: customer:EMAIL, support:NAME, admin:NAME, system or carrier.
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: String,
    /// A reason code of the machine, e.g. customer_request.
    #[arg(long, value_name = "CODE")]
    pub reason: Option<String>,
    /// A note for the audit trail.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// An idempotency key: the same key again replays the stored outcome.
    #[arg(long, value_name = "IDEMPOTENCY_KEY")]
    pub key: Option<String>,
}

#[derive(Args, Debug)]
pub struct AvailableArgs {
    /// The order's id.
    pub order: String,
    /// Who asks: customer:EMAIL, support:NAME, admin:NAME, system or carrier.
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only orders in these states.
    #[arg(long, value_name = "S,S")]
    pub state: Option<String>,
    /// No orders in these states.
    #[arg(long, value_name = "S,S")]
    pub not_state: Option<String>,
    /// Only this customer's orders.
    #[arg(long, value_name = "EMAIL")]
    pub customer: Option<String>,
    /// At most this many orders.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The order's id.
    pub order: String,
    /// Also the refused and failed attempts (in JSON: `{"trail": [...], "attempts":
    /// [...]}` instead of the trail's array).
    #[arg(long)]
    pub attempts: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["ids", "state"])))]
pub struct BulkArgs {
    /// The event, e.g. cancel.
    pub event: String,
    /// These orders.
    #[arg(long, value_name = "ID,ID")]
    pub ids: Option<String>,
    /// Every order in these states when the operation starts.
    #[arg(long, value_name = "S,S")]
    pub state: Option<String>,
    /// Who fires: customer:EMAIL, support:NAME, admin:NAME, system or carrier.
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: String,
    /// A reason code of the machine, e.g. customer_request.
    #[arg(long, value_name = "CODE")]
    pub reason: Option<String>,
    /// A note for each order's audit trail.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// An idempotency key; each order gets `KEY:ID`, so a rerun replays.
    #[arg(long, value_name = "IDEMPOTENCY_KEY")]
    pub key: Option<String>,
    /// Check every order (authorization, window, guards) without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
