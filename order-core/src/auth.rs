//! Who may act as staff: the `Authorizer` the engine asks at the authorization step.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::order::ActorKind;
use crate::store::Store;

/// Answers whether a principal holds a staff role of the machine (`support`, `admin`).
#[async_trait]
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    async fn holds_role(&self, principal: &str, role: ActorKind) -> Result<bool, StoreError>;
}

/// The staff table of the store: a principal holds exactly the role recorded for them.
#[derive(Debug, Clone)]
pub struct StaffDirectory {
    store: Arc<dyn Store>,
}

impl StaffDirectory {
    pub fn new(store: Arc<dyn Store>) -> StaffDirectory {
        StaffDirectory { store }
    }
}

#[async_trait]
impl Authorizer for StaffDirectory {
    async fn holds_role(&self, principal: &str, role: ActorKind) -> Result<bool, StoreError> {
        Ok(self
            .store
            .staff(principal)
            .await?
            .is_some_and(|staff| staff.role == role))
    }
}
