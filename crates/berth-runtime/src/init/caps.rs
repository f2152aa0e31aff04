//! Capabilities: drop the bounding set, then set effective, permitted, inheritable and ambient.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use super::{fail, StepError};

fn to_set(list: &Option<oci_spec::runtime::Capabilities>, supported: &CapsHashSet) -> CapsHashSet {
    list.iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?;
            name.as_str()?.parse::<Capability>().ok()
        })
        // A capability this kernel does not know is skipped, as runc does.
        .filter(|c| supported.contains(c))
        .collect()
}

/// Sets to apply after the user switch.
pub struct Sets {
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
    bounding: CapsHashSet,
    supported: CapsHashSet,
}

/// Read the spec's capability sets (missing sets are empty, as in runc).
pub fn sets(spec: Option<&LinuxCapabilities>) -> Sets {
    // One read of /proc/sys/kernel/cap_last_cap instead of a prctl per capability.
    let supported = caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported());
    let none = None;
    let get = |f: fn(&LinuxCapabilities) -> &Option<oci_spec::runtime::Capabilities>| {
        to_set(spec.map(f).unwrap_or(&none), &supported)
    };
    Sets {
        effective: get(LinuxCapabilities::effective),
        permitted: get(LinuxCapabilities::permitted),
        inheritable: get(LinuxCapabilities::inheritable),
        ambient: get(LinuxCapabilities::ambient),
        bounding: get(LinuxCapabilities::bounding),
        supported,
    }
}

/// Drop everything outside the bounding set (needs CAP_SETPCAP, so before the user switch).
pub fn drop_bounding(sets: &Sets) -> Result<(), StepError> {
    for cap in sets.supported.iter().copied() {
        if !sets.bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| fail(format!("drop {cap} from the bounding set"), e.to_string()))?;
        }
    }
    Ok(())
}

/// Apply the remaining sets (after the user switch, with keepcaps).
pub fn apply(sets: &Sets) -> Result<(), StepError> {
    let set = |which: CapSet, value: &CapsHashSet, name: &str| {
        caps::set(None, which, value)
            .map_err(|e| fail(format!("set {name} capabilities"), e.to_string()))
    };
    // Inheritable first, while the old permitted set still allows it; effective must stay a
    // subset of permitted at every step.
    set(CapSet::Inheritable, &sets.inheritable, "inheritable")?;
    let both: CapsHashSet = sets
        .effective
        .intersection(&sets.permitted)
        .copied()
        .collect();
    set(CapSet::Effective, &both, "effective")?;
    set(CapSet::Permitted, &sets.permitted, "permitted")?;
    set(CapSet::Effective, &sets.effective, "effective")?;
    caps::clear(None, CapSet::Ambient)
        .map_err(|e| fail("clear ambient capabilities", e.to_string()))?;
    // The kernel only allows ambient capabilities that are also permitted and inheritable;
    // runc skips the others (its default spec lists ambient caps without inheritable ones).
    for cap in sets
        .ambient
        .iter()
        .filter(|c| sets.inheritable.contains(c) && sets.permitted.contains(c))
    {
        caps::raise(None, CapSet::Ambient, *cap)
            .map_err(|e| fail(format!("raise ambient {cap}"), e.to_string()))?;
    }
    Ok(())
}
