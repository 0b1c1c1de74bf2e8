//! Image references as users write them (`registry.example.com/team/app:1.0`, `app:1.0`, `repo@sha256:…`) and
//! how they select an image in a layout: by `io.containerd.image.name` (the full name buildx writes) or by
//! `org.opencontainers.image.ref.name` (a tag, or a full name), with Docker's defaults (`docker.io`,
//! `library/`, `latest`) applied to both sides.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::{Descriptor, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};

const DEFAULT_REGISTRY: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry host[:port], if the reference names one.
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidReference(text.to_owned());
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest.parse::<Digest>().map_err(|_| invalid())?)),
            None => (text, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_owned()),
            ),
            None => (name, None),
        };
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (Some(first.to_owned()), rest.to_owned())
            }
            _ => (None, path.to_owned()),
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        };
        if !repository.split('/').all(component_ok) {
            return Err(invalid());
        }
        if let Some(tag) = &tag {
            let tag_ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !tag_ok {
                return Err(invalid());
            }
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository` with Docker's defaults: `app` is `docker.io/library/app`.
    pub fn normalized_repository(&self) -> String {
        let registry = self.registry.as_deref().unwrap_or(DEFAULT_REGISTRY);
        if registry == DEFAULT_REGISTRY && !self.repository.contains('/') {
            format!("{registry}/library/{}", self.repository)
        } else {
            format!("{registry}/{}", self.repository)
        }
    }

    pub fn tag_or_default(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// `registry/repository:tag`, normalized.
    pub fn normalized(&self) -> String {
        format!("{}:{}", self.normalized_repository(), self.tag_or_default())
    }

    /// The repository as cosign names it in a signature's `docker-reference` (go-containerregistry spells Docker
    /// Hub `index.docker.io`).
    pub fn cosign_repository(&self) -> String {
        match &self.registry {
            None => self
                .normalized_repository()
                .replacen(DEFAULT_REGISTRY, "index.docker.io", 1),
            Some(registry) => format!("{registry}/{}", self.repository),
        }
    }

    /// Whether the `index.json` entry `entry` is the image this reference names.
    pub fn selects(&self, entry: &Descriptor) -> bool {
        if let Some(digest) = &self.digest {
            return entry.digest == *digest;
        }
        if let Some(name) = entry.annotation(ANNOTATION_CONTAINERD_NAME) {
            return Reference::parse(name).is_ok_and(|r| r.normalized() == self.normalized());
        }
        match entry.annotation(ANNOTATION_REF_NAME) {
            // A full name.
            Some(name) if name.contains('/') => {
                Reference::parse(name).is_ok_and(|r| r.normalized() == self.normalized())
            }
            // A tag, as buildx and oras write it.
            Some(tag) => tag == self.tag_or_default(),
            None => false,
        }
    }
}

/// How an `index.json` entry is named, for messages listing what a layout holds.
pub fn entry_name(entry: &Descriptor) -> String {
    entry
        .annotation(ANNOTATION_CONTAINERD_NAME)
        .or_else(|| entry.annotation(ANNOTATION_REF_NAME))
        .map_or_else(|| format!("(untagged {})", entry.digest), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(annotations: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::of(crate::layout::OCI_MANIFEST, b"{}");
        d.annotations = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>();
        d
    }

    fn parse(text: &str) -> Reference {
        Reference::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn references_are_normalized_like_docker() {
        assert_eq!(parse("app").normalized(), "docker.io/library/app:latest");
        assert_eq!(parse("team/app:1.0").normalized(), "docker.io/team/app:1.0");
        assert_eq!(
            parse("localhost:5000/app:1.0").normalized(),
            "localhost:5000/app:1.0"
        );
        assert_eq!(
            parse("localhost:5000/app").registry.as_deref(),
            Some("localhost:5000")
        );
        assert_eq!(parse("app").cosign_repository(), "index.docker.io/library/app");
        for bad in ["", "App:1", "a//b", "app:", "app@sha256:12"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn containerd_name_decides_over_a_bare_tag() {
        let e = entry(&[
            (ANNOTATION_CONTAINERD_NAME, "docker.io/team/app:1.0"),
            (ANNOTATION_REF_NAME, "1.0"),
        ]);
        assert!(parse("team/app:1.0").selects(&e));
        assert!(parse("docker.io/team/app:1.0").selects(&e));
        assert!(!parse("team/other:1.0").selects(&e));
        assert!(!parse("team/app:2.0").selects(&e));
    }

    #[test]
    fn ref_name_matches_as_tag_or_full_name() {
        assert!(parse("registry.example.com/app:1.0").selects(&entry(&[(ANNOTATION_REF_NAME, "1.0")])));
        let full = entry(&[(ANNOTATION_REF_NAME, "registry.example.com/app:1.0")]);
        assert!(parse("registry.example.com/app:1.0").selects(&full));
        assert!(!parse("registry.example.com/web:1.0").selects(&full));
        assert!(!parse("app:1.0").selects(&entry(&[])));
    }
}
