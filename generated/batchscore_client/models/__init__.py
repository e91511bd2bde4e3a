"""Contains all the data models used in inputs/outputs"""

from .access_token_response import AccessTokenResponse
from .access_token_response_token_type import AccessTokenResponseTokenType
from .batch_execution_list import BatchExecutionList
from .batch_execution_result import BatchExecutionResult
from .batch_execution_result_passthrough import BatchExecutionResultPassthrough
from .batch_execution_summary import BatchExecutionSummary
from .batch_execution_summary_labels import BatchExecutionSummaryLabels
from .batch_export_end import BatchExportEnd
from .batch_export_record import BatchExportRecord
from .batch_item_attempt import BatchItemAttempt
from .batch_item_state import BatchItemState
from .batch_state import BatchState
from .batch_web_service_result import BatchWebServiceResult
from .create_session_request import CreateSessionRequest
from .create_session_response import CreateSessionResponse
from .create_snapshot_request import CreateSnapshotRequest
from .create_snapshot_response import CreateSnapshotResponse
from .error import Error
from .error_detail import ErrorDetail
from .export_batch_execution_results_include_item import (
    ExportBatchExecutionResultsIncludeItem,
)
from .export_batch_execution_results_order import ExportBatchExecutionResultsOrder
from .get_web_service_swagger_response_200 import GetWebServiceSwaggerResponse200
from .input_parameters import InputParameters
from .login_request import LoginRequest
from .output_parameters import OutputParameters
from .parameter_definition import ParameterDefinition
from .parameter_type import ParameterType
from .publish_web_service_request import PublishWebServiceRequest
from .renew_token_request import RenewTokenRequest
from .runtime_type import RuntimeType
from .service_definition_fields import ServiceDefinitionFields
from .snapshot import Snapshot
from .start_batch_execution_response import StartBatchExecutionResponse
from .status_response import StatusResponse
from .status_response_components import StatusResponseComponents
from .status_response_details import StatusResponseDetails
from .status_response_status_code import StatusResponseStatusCode
from .web_service import WebService
from .web_service_my_permission_on_service import WebServiceMyPermissionOnService
from .web_service_result import WebServiceResult
from .web_service_result_output_files import WebServiceResultOutputFiles
from .web_service_runtime_type import WebServiceRuntimeType
from .webhook_delivery import WebhookDelivery
from .webhook_delivery_event import WebhookDeliveryEvent
from .webhook_delivery_state import WebhookDeliveryState
from .webhook_event import WebhookEvent
from .webhook_event_type import WebhookEventType
from .webhook_secret import WebhookSecret

__all__ = (
    "AccessTokenResponse",
    "AccessTokenResponseTokenType",
    "BatchExecutionList",
    "BatchExecutionResult",
    "BatchExecutionResultPassthrough",
    "BatchExecutionSummary",
    "BatchExecutionSummaryLabels",
    "BatchExportEnd",
    "BatchExportRecord",
    "BatchItemAttempt",
    "BatchItemState",
    "BatchState",
    "BatchWebServiceResult",
    "CreateSessionRequest",
    "CreateSessionResponse",
    "CreateSnapshotRequest",
    "CreateSnapshotResponse",
    "Error",
    "ErrorDetail",
    "ExportBatchExecutionResultsIncludeItem",
    "ExportBatchExecutionResultsOrder",
    "GetWebServiceSwaggerResponse200",
    "InputParameters",
    "LoginRequest",
    "OutputParameters",
    "ParameterDefinition",
    "ParameterType",
    "PublishWebServiceRequest",
    "RenewTokenRequest",
    "RuntimeType",
    "ServiceDefinitionFields",
    "Snapshot",
    "StartBatchExecutionResponse",
    "StatusResponse",
    "StatusResponseComponents",
    "StatusResponseDetails",
    "StatusResponseStatusCode",
    "WebService",
    "WebServiceMyPermissionOnService",
    "WebServiceResult",
    "WebServiceResultOutputFiles",
    "WebServiceRuntimeType",
    "WebhookDelivery",
    "WebhookDeliveryEvent",
    "WebhookDeliveryState",
    "WebhookEvent",
    "WebhookEventType",
    "WebhookSecret",
)
