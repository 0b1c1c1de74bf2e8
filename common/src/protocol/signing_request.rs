//! SignPath's documents of a signing request as a whole (the file-based API, and the polling routes every request
//! shares): the answer to a submission, the request's data (`GET SigningRequests/{id}`) and its status
//! (`GET SigningRequests/{id}/Status`), with SignPath's status names as enums. The gateway writes them and
//! `signpath-oci submit` reads them; field order and names are SignPath's documented shape
//! (https://docs.signpath.io/build-system-integration#get-signing-request-data), so a client reads our gateway and
//! SignPath alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A signing request's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    InProgress,
    WaitingForApproval,
    Completed,
    Failed,
    Denied,
    Canceled,
    /// A status SignPath added after this was written (read only; a client goes by `isFinalStatus`).
    #[serde(other)]
    Unknown,
}

/// SignPath's name of the status (the variants are named as SignPath names them).
impl std::fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl RequestStatus {
    /// Whether nothing more will happen to the request: `Completed`, `Failed`, `Denied` or `Canceled` (SignPath's
    /// `isFinalStatus`).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Denied | Self::Canceled
        )
    }
}

/// A signing request's `workflowStatus`: where in SignPath's processing it is, finer than its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkflowStatus {
    Submitted,
    RetrievingArtifact,
    WaitingForApproval,
    QueuedForMalwareScanning,
    ScanningForMalware,
    QueuedForProcessing,
    Processing,
    Completed,
    ProcessingFailed,
    MalwareScanFailed,
    MalwareDetected,
    ArtifactRetrievalFailed,
    Denied,
    Canceled,
    /// A workflow status SignPath added after this was written (read only).
    #[serde(other)]
    Unknown,
}

/// The `201 Created` body of `SubmitWithArtifact` (and of the other submit routes); the request's URL is in the
/// `Location` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedSigningRequest {
    pub signing_request_id: String,
    /// Since SignPath 1.205.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_link: Option<String>,
}

/// `GET {ApiUrl}/v1/{OrganizationId}/SigningRequests/{id}/Status`: the polling route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningRequestStatus {
    pub status: RequestStatus,
    pub is_final_status: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_status: Option<WorkflowStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_link: Option<String>,
    /// Whether SignPath holds the unsigned artifact of a request submitted with a link to it (its GitHub
    /// connector's requests: SignPath downloads the workflow's artifact, and the action, when it does not wait for
    /// the signature, polls until this is true, before the workflow's token that lets SignPath download it
    /// expires). For a request whose artifact was uploaded with it, true from the start. Absent for a hash.
    #[serde(
        rename = "hasArtifactBeenDownloadedBySignPathInCaseOfArtifactRetrieval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_retrieved: Option<bool>,
}

impl SigningRequestStatus {
    /// The status document of a request at `status`, `isFinalStatus` as the status says.
    pub fn new(status: RequestStatus, web_link: Option<String>) -> Self {
        Self {
            status,
            is_final_status: status.is_final(),
            workflow_status: None,
            web_link,
            artifact_retrieved: None,
        }
    }
}

/// `GET {ApiUrl}/v1/{OrganizationId}/SigningRequests/{id}`: a file-based request's data, with the links to its
/// artifacts. The fields SignPath sends that the gateway has no value for (the ids and display names of projects,
/// policies and artifact configurations; `origin` of a request that was not origin-verified) are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningRequestData {
    pub status: RequestStatus,
    pub is_final_status: bool,
    pub workflow_status: WorkflowStatus,
    /// Always present, `null` when the request was submitted without one.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    pub project_slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_configuration_id: Option<String>,
    pub artifact_configuration_slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_configuration_name: Option<String>,
    pub signing_policy_id: String,
    pub signing_policy_slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_policy_name: Option<String>,
    /// Absent once the artifacts were deleted after the retention period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsigned_artifact_link: Option<String>,
    /// Present (while the artifacts are kept) before the request is completed too: it answers 400 until then.
    /// SignPath's PowerShell module says "artifacts have been deleted" when it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_artifact_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Since SignPath 1.205.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_link: Option<String>,
    /// Extension: the request's id, which SignPath's document leaves to the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_request_id: Option<String>,
}

/// Where an origin-verified request was built, as SignPath reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_data: Option<BuildData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_data: Option<RepositoryData>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_settings_file: Option<BuildSettingsFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSettingsFile {
    pub download_link: String,
    pub file_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_control_management_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SignPath's documented `GET SigningRequests/{id}` answer (build-system-integration), with `webLink` (1.205.1),
    /// in its order.
    const DOCUMENTED_DATA: &str = concat!(
        r#"{"status":"Completed","isFinalStatus":true,"workflowStatus":"Completed","description":"...","#,
        r#""projectId":"uuid","projectSlug":"...","projectName":"...","#,
        r#""artifactConfigurationId":"uuid","artifactConfigurationSlug":"Default","artifactConfigurationName":"Default","#,
        r#""signingPolicyId":"uuid","signingPolicySlug":"test-signing","signingPolicyName":"...","#,
        r#""unsignedArtifactLink":".../SigningRequests/{id}/UnsignedArtifact","#,
        r#""signedArtifactLink":".../SigningRequests/{id}/SignedArtifact","#,
        r#""origin":{"buildData":{"buildSettingsFile":{"downloadLink":"...","fileName":"AppVeyorSettings.json"},"url":"..."},"#,
        r#""repositoryData":{"url":"https://github.com/name/project","branchName":"main","#,
        r#""commitId":"efe8bb...","sourceControlManagementType":"git"}},"#,
        r#""parameters":{"param1":"value1"},"webLink":"https://app.signpath.io/Web/o/SigningRequests/id"}"#
    );

    #[test]
    fn signpaths_documented_request_data_reads_and_writes_back_byte_for_byte() {
        let data: SigningRequestData = serde_json::from_str(DOCUMENTED_DATA).unwrap();
        assert_eq!(data.status, RequestStatus::Completed);
        assert_eq!(data.workflow_status, WorkflowStatus::Completed);
        assert_eq!(
            data.origin
                .as_ref()
                .and_then(|o| o.repository_data.as_ref())
                .and_then(|r| r.branch_name.as_deref()),
            Some("main")
        );
        assert_eq!(serde_json::to_string(&data).unwrap(), DOCUMENTED_DATA);
    }

    #[test]
    fn the_gateways_request_data_is_signpaths_shape_with_what_it_has() {
        let data = SigningRequestData {
            status: RequestStatus::WaitingForApproval,
            is_final_status: false,
            workflow_status: WorkflowStatus::WaitingForApproval,
            description: None,
            project_id: None,
            project_slug: "demo".into(),
            project_name: None,
            artifact_configuration_id: None,
            artifact_configuration_slug: "Default".into(),
            artifact_configuration_name: None,
            signing_policy_id: "p-1".into(),
            signing_policy_slug: "ec-256".into(),
            signing_policy_name: None,
            unsigned_artifact_link: Some("https://gw/v1/o/SigningRequests/r/UnsignedArtifact".into()),
            signed_artifact_link: Some("https://gw/v1/o/SigningRequests/r/SignedArtifact".into()),
            origin: None,
            parameters: BTreeMap::from([("ImageReference".into(), "registry.example/app".into())]),
            web_link: Some("https://gw/Web/o/SigningRequests/r".into()),
            signing_request_id: Some("r".into()),
        };
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            concat!(
                r#"{"status":"WaitingForApproval","isFinalStatus":false,"workflowStatus":"WaitingForApproval","#,
                r#""description":null,"projectSlug":"demo","artifactConfigurationSlug":"Default","#,
                r#""signingPolicyId":"p-1","signingPolicySlug":"ec-256","#,
                r#""unsignedArtifactLink":"https://gw/v1/o/SigningRequests/r/UnsignedArtifact","#,
                r#""signedArtifactLink":"https://gw/v1/o/SigningRequests/r/SignedArtifact","#,
                r#""parameters":{"ImageReference":"registry.example/app"},"#,
                r#""webLink":"https://gw/Web/o/SigningRequests/r","signingRequestId":"r"}"#
            )
        );
    }

    #[test]
    fn the_status_document_is_the_one_signpaths_github_action_reads() {
        // dtos/signing-request-status.ts of signpath/github-action-submit-signing-request: these four fields.
        let documented = concat!(
            r#"{"status":"InProgress","isFinalStatus":false,"webLink":"https://app.signpath.io/Web/o/SigningRequests/r","#,
            r#""hasArtifactBeenDownloadedBySignPathInCaseOfArtifactRetrieval":true}"#
        );
        let status: SigningRequestStatus = serde_json::from_str(documented).unwrap();
        assert_eq!(status.artifact_retrieved, Some(true));
        assert_eq!(serde_json::to_string(&status).unwrap(), documented);
        let mut status = SigningRequestStatus::new(
            RequestStatus::Failed,
            Some("https://gw/Web/o/SigningRequests/r".into()),
        );
        status.workflow_status = Some(WorkflowStatus::ProcessingFailed);
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"status":"Failed","isFinalStatus":true,"workflowStatus":"ProcessingFailed","webLink":"https://gw/Web/o/SigningRequests/r"}"#
        );
    }

    #[test]
    fn the_final_statuses_are_signpaths_four() {
        use RequestStatus::*;
        let final_ones: Vec<_> = [
            InProgress,
            WaitingForApproval,
            Completed,
            Failed,
            Denied,
            Canceled,
        ]
        .into_iter()
        .filter(|s| s.is_final())
        .collect();
        assert_eq!(final_ones, [Completed, Failed, Denied, Canceled]);
    }

    #[test]
    fn a_status_signpath_adds_later_is_read_as_unknown() {
        let status: SigningRequestStatus = serde_json::from_str(
            r#"{"status":"Paused","isFinalStatus":false,"workflowStatus":"Rescanning"}"#,
        )
        .unwrap();
        assert_eq!(status.status, RequestStatus::Unknown);
        assert_eq!(status.workflow_status, Some(WorkflowStatus::Unknown));
    }

    #[test]
    fn a_submission_answers_its_id_and_web_link() {
        let submitted = SubmittedSigningRequest {
            signing_request_id: "r".into(),
            web_link: Some("https://gw/Web/o/SigningRequests/r".into()),
        };
        assert_eq!(
            serde_json::to_string(&submitted).unwrap(),
            r#"{"signingRequestId":"r","webLink":"https://gw/Web/o/SigningRequests/r"}"#
        );
    }
}
