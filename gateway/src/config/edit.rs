//! Writing `gateway.toml` back the way its operator wrote it. The commands that change the configuration (`token
//! add`, `approver add`, `policy certificate import`, `policy rotate`, `access …`) change the [`GatewayConfig`]
//! value; [`merge`] then carries only what changed into the file as `toml_edit` parsed it, so comments, blank
//! lines, the order of keys and tables, and inline tables stay where the operator put them.
//!
//! Entries of an array of tables (`[[tokens]]`, `[[projects.policies]]`, …) are matched by their `slug`, `id` or
//! `name`, so an entry removed from the middle does not move the comments of those after it onto its neighbour.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

/// The keys that name an entry of an array of tables, in the order they are tried.
const IDENTITY_KEYS: [&str; 3] = ["slug", "id", "name"];

/// `current` (the file as it is) changed to say what `wanted` (the configuration, freshly serialized) says.
pub fn merge(current: &mut DocumentMut, wanted: &DocumentMut) {
    merge_table(current.as_table_mut(), wanted.as_table());
}

fn merge_table(current: &mut Table, wanted: &Table) {
    current.retain(|key, _| wanted.contains_key(key));
    for (key, item) in wanted.iter() {
        match current.get_mut(key) {
            Some(existing) => merge_item(existing, item),
            None => {
                current.insert(key, fresh(item));
            }
        }
    }
}

fn merge_item(current: &mut Item, wanted: &Item) {
    match (&mut *current, wanted) {
        (Item::Table(current), Item::Table(wanted)) => merge_table(current, wanted),
        (Item::ArrayOfTables(current), Item::ArrayOfTables(wanted)) => merge_array(current, wanted),
        (Item::Value(Value::InlineTable(inline)), Item::Table(wanted)) => {
            // The operator wrote it inline (`approval = { required = 2 }`): keep it inline.
            let mut table = wanted.clone().into_inline_table();
            table.fmt();
            if render(&Value::InlineTable(inline.clone())) != render(&Value::InlineTable(table.clone())) {
                let decor = inline.decor().clone();
                *inline = table;
                *inline.decor_mut() = decor;
            }
        }
        (Item::Value(value), Item::Value(wanted)) => {
            if render(value) != render(wanted) {
                let decor = value.decor().clone();
                *value = wanted.clone();
                *value.decor_mut() = decor;
            }
        }
        (current, wanted) => *current = fresh(wanted),
    }
}

fn merge_array(current: &mut ArrayOfTables, wanted: &ArrayOfTables) {
    let mut old: Vec<Option<Table>> = current.iter().cloned().map(Some).collect();
    let mut merged = ArrayOfTables::new();
    for (index, table) in wanted.iter().enumerate() {
        let same = |candidate: &Table| {
            IDENTITY_KEYS
                .iter()
                .find_map(|key| Some((candidate.get(key)?.as_str()?, table.get(key)?.as_str()?)))
                .is_some_and(|(a, b)| a == b)
        };
        let has_identity = IDENTITY_KEYS.iter().any(|key| table.contains_key(key));
        let found = if has_identity {
            old.iter().position(|t| t.as_ref().is_some_and(same))
        } else {
            old.get(index).and_then(|t| t.as_ref()).map(|_| index)
        };
        match found.and_then(|i| old[i].take()) {
            Some(mut existing) => {
                merge_table(&mut existing, table);
                merged.push(existing);
            }
            None => merged.push(fresh_table(table)),
        }
    }
    *current = merged;
}

/// A value as TOML, without the whitespace and comments around it.
fn render(value: &Value) -> String {
    let mut bare = value.clone();
    bare.decor_mut().clear();
    bare.to_string()
}

/// A copy of an item of the serialized configuration without its place in that document, so it is written after
/// what precedes it in this one.
fn fresh(item: &Item) -> Item {
    match item {
        Item::Table(table) => Item::Table(fresh_table(table)),
        Item::ArrayOfTables(array) => {
            let mut copy = ArrayOfTables::new();
            for table in array.iter() {
                copy.push(fresh_table(table));
            }
            Item::ArrayOfTables(copy)
        }
        other => other.clone(),
    }
}

fn fresh_table(table: &Table) -> Table {
    let mut copy = Table::new();
    copy.set_implicit(table.is_implicit());
    for (key, item) in table.iter() {
        copy.insert(key, fresh(item));
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(current: &str, wanted: &str) -> String {
        let mut document: DocumentMut = current.parse().expect("current");
        merge(&mut document, &wanted.parse().expect("wanted"));
        document.to_string()
    }

    #[test]
    fn comments_order_and_inline_tables_survive_a_new_policy() {
        let current = "\
# The release gateway. Ask #platform before changing it.
listen = \"0.0.0.0:8443\"   # behind the load balancer

[[projects]]
slug = \"acme\"

# Production key, approved by two.
[[projects.policies]]
slug = \"release\"
key_label = \"acme/release\"
approval = { required = 2 }

[[projects]]
slug = \"other\"
";
        let wanted = "\
listen = \"0.0.0.0:8443\"

[[projects]]
slug = \"acme\"

[[projects.policies]]
slug = \"release\"
key_label = \"acme/release\"

[projects.policies.approval]
required = 2

[[projects.policies]]
slug = \"nightly\"
key_label = \"acme/nightly/1\"

[[projects]]
slug = \"other\"
";
        let text = merged(current, wanted);
        assert_eq!(
            text,
            "\
# The release gateway. Ask #platform before changing it.
listen = \"0.0.0.0:8443\"   # behind the load balancer

[[projects]]
slug = \"acme\"

# Production key, approved by two.
[[projects.policies]]
slug = \"release\"
key_label = \"acme/release\"
approval = { required = 2 }

[[projects.policies]]
slug = \"nightly\"
key_label = \"acme/nightly/1\"

[[projects]]
slug = \"other\"
"
        );
    }

    #[test]
    fn a_changed_value_keeps_its_comment_and_a_removed_entry_takes_only_its_own() {
        let current = "\
[[tokens]]
# CI of the app
name = \"ci\"
sha256 = \"aa\"   # rotated 2026-11

[[tokens]]
# the old laptop
name = \"laptop\"
sha256 = \"bb\"

[[tokens]]
# the release job
name = \"release\"
sha256 = \"cc\"
";
        let wanted = "\
[[tokens]]
name = \"ci\"
sha256 = \"dd\"

[[tokens]]
name = \"release\"
sha256 = \"cc\"
";
        assert_eq!(
            merged(current, wanted),
            "\
[[tokens]]
# CI of the app
name = \"ci\"
sha256 = \"dd\"   # rotated 2026-11

[[tokens]]
# the release job
name = \"release\"
sha256 = \"cc\"
"
        );
    }
}
