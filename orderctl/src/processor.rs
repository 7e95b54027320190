//! The payment processor `orderctl` gives the engine.
//!
//! The engine's default processor, `order_core::payment::Simulator`, never fails but
//! keeps its books in memory, and every `orderctl` invocation is a new process: the
//! capture of `fire ORDER pay` would not know the authorization that an earlier
//! `order authorize` made (`rejected: unknown payment `pay_000001``), and every
//! process would hand out the same first reference. Until `orderctl` talks to a real
//! processor it uses this one instead: it never fails either, keeps no books (the
//! database's payment and refund rows are the only record) and derives its references
//! from the idempotency keys, so that a repeated key gets the same answer, as from a
//! real processor. Like the simulator, it refuses amounts that are not positive.
//!
//! The methods are written out as `async_trait` expands them, since `orderctl` does
//! not depend on that crate.

use std::future::{Future, ready};
use std::pin::Pin;

use order_core::payment::{Authorization, Balance, PaymentError, PaymentProcessor};

/// What `async_trait` makes of an `async fn` of the trait.
type Reply<'a, T> = Pin<Box<dyn Future<Output = Result<T, PaymentError>> + Send + 'a>>;

/// A processor without books that accepts every well-formed request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Processor;

fn positive(amount_cents: i64) -> Result<(), PaymentError> {
    if amount_cents > 0 {
        Ok(())
    } else {
        Err(PaymentError::Rejected(format!(
            "amount must be positive, got {amount_cents}"
        )))
    }
}

impl PaymentProcessor for Processor {
    fn authorize<'a, 'k, 'r>(&'a self, key: &'k str, amount_cents: i64) -> Reply<'r, Authorization>
    where
        'a: 'r,
        'k: 'r,
        Self: 'r,
    {
        let reply = positive(amount_cents).map(|()| Authorization {
            reference: format!("pay_{key}"),
            amount_cents,
            review: false,
        });
        Box::pin(ready(reply))
    }

    fn capture<'a, 'k, 'f, 'r>(
        &'a self,
        _key: &'k str,
        _reference: &'f str,
        amount_cents: i64,
    ) -> Reply<'r, ()>
    where
        'a: 'r,
        'k: 'r,
        'f: 'r,
        Self: 'r,
    {
        Box::pin(ready(positive(amount_cents)))
    }

    fn void<'a, 'k, 'f, 'r>(&'a self, _key: &'k str, _reference: &'f str) -> Reply<'r, ()>
    where
        'a: 'r,
        'k: 'r,
        'f: 'r,
        Self: 'r,
    {
        Box::pin(ready(Ok(())))
    }

    fn refund<'a, 'k, 'f, 'r>(
        &'a self,
        key: &'k str,
        _reference: &'f str,
        amount_cents: i64,
    ) -> Reply<'r, String>
    where
        'a: 'r,
        'k: 'r,
        'f: 'r,
        Self: 'r,
    {
        Box::pin(ready(positive(amount_cents).map(|()| format!("re_{key}"))))
    }

    /// There are no books to read: the engine asks only when a capture timed out,
    /// which this processor never does.
    fn balance<'a, 'f, 'r>(&'a self, reference: &'f str) -> Reply<'r, Balance>
    where
        'a: 'r,
        'f: 'r,
        Self: 'r,
    {
        Box::pin(ready(Err(PaymentError::Unavailable(format!(
            "orderctl's processor keeps no books; the database holds `{reference}`'s payments"
        )))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_derive_from_keys_and_amounts_must_be_positive() {
        let processor = Processor;
        let auth = processor.authorize("order-1-authorize-1", 500).await;
        assert_eq!(
            auth.map(|a| a.reference),
            Ok("pay_order-1-authorize-1".to_owned())
        );
        assert_eq!(processor.capture("c", "pay_x", 500).await, Ok(()));
        assert_eq!(processor.void("v", "pay_x").await, Ok(()));
        assert_eq!(
            processor.refund("order-1-t5-refund-1", "pay_x", 500).await,
            Ok("re_order-1-t5-refund-1".to_owned())
        );
        assert!(matches!(
            processor.authorize("k", 0).await,
            Err(PaymentError::Rejected(_))
        ));
        assert!(processor.balance("pay_x").await.is_err());
    }
}
