//! [`Outcome`] → Envoy `CheckResponse`.

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;

use crate::check::Outcome;
use crate::config::Denials;

const RPC_OK: i32 = 0;
const RPC_PERMISSION_DENIED: i32 = 7;
const RPC_UNAUTHENTICATED: i32 = 16;

fn header(key: &str, value: String, action: HeaderAppendAction) -> HeaderValueOption {
    #[allow(deprecated)]
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: action.into(),
        keep_empty_value: false,
    }
}

/// Builds the gRPC response Envoy acts on.
pub fn to_check_response(outcome: Outcome, denials: &Denials) -> CheckResponse {
    match outcome {
        Outcome::Allow { headers, .. } => CheckResponse {
            status: Some(RpcStatus {
                code: RPC_OK,
                ..Default::default()
            }),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: headers
                    .set
                    .into_iter()
                    .map(|(k, v)| header(&k, v, HeaderAppendAction::OverwriteIfExistsOrAdd))
                    .collect(),
                headers_to_remove: headers.remove,
                ..Default::default()
            })),
            ..Default::default()
        },
        Outcome::Deny(denial) => {
            let status = denial.reason.http_status();
            let mut headers = vec![header(
                "content-type",
                "application/json".into(),
                HeaderAppendAction::OverwriteIfExistsOrAdd,
            )];
            if let Some(challenge) = denial.www_authenticate(denials) {
                headers.push(header(
                    "www-authenticate",
                    challenge,
                    HeaderAppendAction::OverwriteIfExistsOrAdd,
                ));
            }
            let code = if status == 401 {
                RPC_UNAUTHENTICATED
            } else {
                RPC_PERMISSION_DENIED
            };
            CheckResponse {
                status: Some(RpcStatus {
                    code,
                    message: denial.reason.code().to_owned(),
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus {
                        code: i32::from(status),
                    }),
                    headers,
                    body: denial.body(),
                })),
                ..Default::default()
            }
        }
    }
}
