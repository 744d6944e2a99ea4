//! An index over role assignments, by principal and then by scope, so one decision among 100,000 assignments looks
//! at the caller's applicable assignments only.

use std::collections::HashMap;

use crate::{grant_by, Assignment, AssignmentSet, Attributes, Decision, Request, RoleCatalog};

/// Assignments indexed by principal (case-insensitively) and then by scope key. A decision hashes the principal,
/// then looks up each ancestor of the target scope (the target's key cut at each `/`, plus `/`), so its cost
/// depends on the depth of the target and the caller's applicable assignments, not on the size of the set.
///
/// Allows exactly what [`decide_with`](crate::decide_with) allows over the same assignments (a property test checks
/// it); it tries applicable assignments from the outermost scope inward and, at one scope, in insertion order, and
/// reports the first that grants.
#[derive(Debug, Clone, Default)]
pub struct AssignmentIndex {
    slots: Vec<Option<Assignment>>,
    free: Vec<usize>,
    /// lower-case principal → lower-case scope key → slots.
    by_principal: HashMap<String, HashMap<String, Vec<usize>>>,
    /// lower-case assignment id → slot.
    by_id: HashMap<String, usize>,
    len: usize,
}

fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

impl AssignmentIndex {
    pub fn new() -> AssignmentIndex {
        AssignmentIndex::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add an assignment. An assignment with the same `id` (case-insensitively) is replaced and returned.
    pub fn insert(&mut self, assignment: Assignment) -> Option<Assignment> {
        let replaced = self.remove(&assignment.id);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.by_principal
            .entry(assignment.principal_id.to_ascii_lowercase())
            .or_default()
            .entry(assignment.scope.key())
            .or_default()
            .push(slot);
        self.by_id.insert(assignment.id.to_ascii_lowercase(), slot);
        self.slots[slot] = Some(assignment);
        self.len += 1;
        replaced
    }

    /// Remove an assignment by `id` (case-insensitively).
    pub fn remove(&mut self, id: &str) -> Option<Assignment> {
        let slot = self.by_id.remove(lower(id).as_ref())?;
        let assignment = self.slots[slot].take()?;
        let principal = assignment.principal_id.to_ascii_lowercase();
        if let Some(scopes) = self.by_principal.get_mut(&principal) {
            let key = assignment.scope.key();
            if let Some(slots) = scopes.get_mut(&key) {
                slots.retain(|&s| s != slot);
                if slots.is_empty() {
                    scopes.remove(&key);
                }
            }
            if scopes.is_empty() {
                self.by_principal.remove(&principal);
            }
        }
        self.free.push(slot);
        self.len -= 1;
        Some(assignment)
    }

    pub fn get(&self, id: &str) -> Option<&Assignment> {
        self.by_id.get(lower(id).as_ref()).and_then(|&slot| self.slots[slot].as_ref())
    }

    /// Every assignment, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Assignment> {
        self.slots.iter().flatten()
    }

    /// Every assignment of a principal, at any scope.
    pub fn of_principal<'s>(
        &'s self,
        principal_id: &str,
    ) -> impl Iterator<Item = &'s Assignment> + 's {
        self.by_principal
            .get(lower(principal_id).as_ref())
            .into_iter()
            .flat_map(|scopes| scopes.values().flatten())
            .filter_map(|&slot| self.slots[slot].as_ref())
    }

    /// The principal's assignments that apply at `scope` (at it or above it), outermost scope first.
    pub fn applicable<'s>(
        &'s self,
        principal_id: &str,
        scope: &berth_arm::ResourceId,
    ) -> Vec<&'s Assignment> {
        let mut out = Vec::new();
        self.for_each_applicable(principal_id, &scope.key(), |a| {
            out.push(a);
            false
        });
        out
    }

    /// Call `f` on each applicable assignment, outermost first, until it returns true.
    fn for_each_applicable<'s>(
        &'s self,
        principal_id: &str,
        target_key: &str,
        mut f: impl FnMut(&'s Assignment) -> bool,
    ) {
        let Some(scopes) = self.by_principal.get(lower(principal_id).as_ref()) else {
            return;
        };
        // The ancestors of the target are its key cut before each `/` (after the first), `/` itself, and the key.
        let cuts = std::iter::once(1)
            .chain(target_key.match_indices('/').map(|(i, _)| i).filter(|&i| i > 0))
            .chain(std::iter::once(target_key.len()));
        let mut last = usize::MAX;
        for cut in cuts {
            if cut == last || cut > target_key.len() {
                continue;
            }
            last = cut;
            let Some(slots) = scopes.get(&target_key[..cut]) else { continue };
            for &slot in slots {
                if let Some(assignment) = &self.slots[slot] {
                    if f(assignment) {
                        return;
                    }
                }
            }
        }
    }
}

impl FromIterator<Assignment> for AssignmentIndex {
    fn from_iter<I: IntoIterator<Item = Assignment>>(iter: I) -> AssignmentIndex {
        let mut index = AssignmentIndex::new();
        for assignment in iter {
            index.insert(assignment);
        }
        index
    }
}

impl AssignmentSet for AssignmentIndex {
    fn decide_with(
        &self,
        catalog: &dyn RoleCatalog,
        request: &Request<'_>,
        attributes: &Attributes,
    ) -> Decision {
        let mut decision = Decision::Denied;
        self.for_each_applicable(request.principal_id, &request.scope.key(), |assignment| {
            match grant_by(catalog, assignment, request, attributes) {
                Some(d) => {
                    decision = d;
                    true
                }
                None => false,
            }
        });
        decision
    }
}
