"""Small helpers over the generated 8-2 classes: CHOICE alternatives by name, PDU builders.

The runtime works on the classes of :mod:`gridbind.generated.iec61850_8_2` end to end (the codec
decodes every payload to them and encodes them back); this module only saves the callers the
nesting of the schema. CHOICE alternatives are looked up by their element name in the generated
field metadata (no hand copy of any alternative list)::

    alternative(m.AccessError, "object-non-existent")   # -> m.AccessError.ObjectNonExistent
    choice_of(m.AccessError, "object-non-existent")     # -> AccessError(choice=ObjectNonExistent())
    name_of(error)                                      # -> "object-non-existent"

Builders: :func:`dom` / :func:`aa` (ObjectName), :func:`read` / :func:`write` / ... (the
ConfirmedServiceRequest of each service), :func:`service_error`, :func:`reject`,
:func:`initiate_request` / :func:`initiate_response`, and readers of the same.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, ForwardRef

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import Iec61850Error

from .association import InitiateParams, bits_to_services, services_to_bits

__all__ = [
    "MmsError",
    "alternative",
    "field_class",
    "choice_of",
    "name_of",
    "service_of",
    "pdu_kind",
    "dom",
    "aa",
    "vmd",
    "name_key",
    "variable",
    "var_defs",
    "var_def_names",
    "file_name",
    "segments",
    "request",
    "read",
    "read_list",
    "write",
    "get_name_list",
    "get_variable_access_attributes",
    "define_named_variable_list",
    "get_named_variable_list_attributes",
    "delete_named_variable_list",
    "file_open",
    "file_read",
    "file_close",
    "file_delete",
    "file_directory",
    "obtain_file",
    "confirmed_request",
    "confirmed_response",
    "confirmed_error",
    "service_error",
    "error_parts",
    "reject",
    "reject_reason",
    "initiate_request",
    "initiate_response",
    "initiate_params",
    "information_report",
    "access_failure",
    "write_results",
]


class MmsError(Iec61850Error, ValueError):
    """A typed object that is not what this module was asked to build or read."""


def _resolve(owner: type, ref: Any) -> Any:
    if isinstance(ref, ForwardRef):
        namespace = vars(sys.modules[owner.__module__])
        return eval(ref.__forward_arg__, namespace)  # noqa: S307 - generated names only
    return ref


@cache
def _choices(cls: type) -> tuple[dict[str, type], dict[type, str]]:
    """``(name -> class, class -> name)`` of the ``choice`` field of a generated CHOICE."""
    for f in dataclasses.fields(cls):
        if f.name == "choice" and f.metadata.get("type") == "Elements":
            by_name = {c["name"]: _resolve(cls, c["type"]) for c in f.metadata["choices"]}
            return by_name, {t: n for n, t in by_name.items()}
    raise MmsError(f"{cls.__name__} is not a CHOICE")


@cache
def field_class(owner: type, name: str) -> type:
    """The generated class of the field ``name`` of ``owner`` (list and optional unwrapped).

    For classes named after an XSD *type* (which a new schema publication may rename, e.g.
    ``FileAttributes``): the field, named after its element, stays.
    """
    hints = typing.get_type_hints(owner, vars(sys.modules[owner.__module__]))
    hint = hints[name]
    while typing.get_args(hint):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise MmsError(f"{owner.__name__}.{name} is not of one class")
        hint = args[0]
    return hint


def alternative(cls: type, name: str) -> type:
    """The class of the alternative ``name`` of the CHOICE ``cls``."""
    try:
        return _choices(cls)[0][name]
    except KeyError:
        raise MmsError(f"{cls.__name__} has no alternative {name!r}") from None


def choice_of(cls: type, name: str, value: Any = None) -> Any:
    """``cls(choice=...)`` holding the alternative ``name`` (``value``, or an empty one)."""
    alt = alternative(cls, name)
    if value is None:
        value = alt()
    return cls(choice=value)


def name_of(holder: Any) -> str:
    """Element name of the alternative that the CHOICE object ``holder`` holds."""
    owner: type = type(holder)
    try:
        return _choices(owner)[1][type(holder.choice)]
    except KeyError:
        raise MmsError(f"{type(holder).__name__} holds no known alternative") from None


def service_of(service: m.ConfirmedServiceRequest | m.ConfirmedServiceResponse) -> str:
    """The MMS service name (``read``, ``fileOpen``...) of a service request or response."""
    return name_of(service)


def pdu_kind(pdu: m.Mmspdu) -> str:
    """The MMSpdu alternative (``confirmed-RequestPDU``, ``rejectPDU``...)."""
    return name_of(pdu)


# ---------------------------------------------------------------------------------- names
def dom(domain: str, item: str) -> m.ObjectName:
    """Domain-specific ObjectName (``LD``, ``LN$FC$DO$DA``)."""
    return m.ObjectName(choice=m.ObjectName.DomainSpecific(domain_id=domain, item_id=item))


def aa(item: str) -> m.ObjectName:
    """Association-specific ObjectName (a data set of this association only)."""
    return m.ObjectName(choice=m.ObjectName.AaSpecific(value=item))


def vmd(item: str) -> m.ObjectName:
    return m.ObjectName(choice=m.ObjectName.VmdSpecific(value=item))


def name_key(name: m.ObjectName) -> tuple[str, ...]:
    """Hashable key of an ObjectName: ``("domain-specific", LD, item)``, ``("aa-specific", x)``."""
    choice = name.choice
    if isinstance(choice, m.ObjectName.DomainSpecific):
        return ("domain-specific", choice.domain_id, choice.item_id)
    if isinstance(choice, m.ObjectName.AaSpecific):
        return ("aa-specific", choice.value)
    if isinstance(choice, m.ObjectName.VmdSpecific):
        return ("vmd-specific", choice.value)
    raise MmsError("ObjectName without an alternative")


def variable(name: m.ObjectName, index: int | None = None) -> m.VariableDefs.Sequence:
    """One entry of a listOfVariable (``index``: one element of an array, alternateAccess)."""
    access = None
    if index is not None:
        select = m.AlternateAccessSelection(choice=m.AccessSelection(choice=index))
        access = m.AlternateAccess(choice=[m.AlternateAccess.Choice(choice=select)])
    return m.VariableDefs.Sequence(
        variable_specification=m.VariableSpecification(name=name), alternate_access=access
    )


def var_defs(entries: Iterable[m.ObjectName | m.VariableDefs.Sequence]) -> m.VariableDefs:
    return m.VariableDefs(
        sequence=[e if isinstance(e, m.VariableDefs.Sequence) else variable(e) for e in entries]
    )


def var_def_names(defs: m.VariableDefs) -> list[m.ObjectName]:
    """The ObjectNames of a listOfVariable (alternate access ignored)."""
    out = []
    for seq in defs.sequence:
        if seq.variable_specification.name is None:
            raise MmsError("variableSpecification without a name")
        out.append(seq.variable_specification.name)
    return out


def file_name(name: str | Sequence[str]) -> m.FileName:
    """FileName from ``a/b.txt`` or its segments."""
    parts = name.split("/") if isinstance(name, str) else list(name)
    return m.FileName(graphic_string=parts)


def segments(name: m.FileName) -> list[str]:
    return list(name.graphic_string)


# ---------------------------------------------------------------------------------- requests
_REQ = m.ConfirmedServiceRequest


def request(service: str, value: Any) -> m.ConfirmedServiceRequest:
    """ConfirmedServiceRequest holding ``value`` as the ``service`` alternative."""
    return choice_of(_REQ, service, value)


def _vas(spec: m.ObjectName | Iterable[Any]) -> m.VariableAccessSpecification:
    if isinstance(spec, m.ObjectName):
        return m.VariableAccessSpecification(choice=spec)
    return m.VariableAccessSpecification(choice=var_defs(spec))


def read(*names: m.ObjectName | m.VariableDefs.Sequence) -> m.ConfirmedServiceRequest:
    """read of a list of variables."""
    return _REQ(choice=m.ReadRequest(variable_access_specification=_vas(names)))


def read_list(list_name: m.ObjectName) -> m.ConfirmedServiceRequest:
    """read of a named variable list (GetDataSetValues)."""
    return _REQ(choice=m.ReadRequest(variable_access_specification=_vas(list_name)))


def write(
    target: m.ObjectName | Iterable[Any], datas: Iterable[m.Data]
) -> m.ConfirmedServiceRequest:
    """write: ``target`` is a variable list name, or a list of variables."""
    return _REQ(
        choice=m.WriteRequest(
            variable_access_specification=_vas(target), list_of_data=m.ListOfData(data=list(datas))
        )
    )


def get_name_list(
    object_class: str,
    scope: str,
    domain: str | None = None,
    continue_after: str | None = None,
    *,
    service: str = "getNameList",
) -> m.ConfirmedServiceRequest:
    """getNameList (or ``service="extendedGetNameList"``); scope ``vmdSpecific``,
    ``domainSpecific`` (with ``domain``) or ``aaSpecific``."""
    cls = alternative(_REQ, service)
    scope_value = domain if scope == "domainSpecific" else None
    return _REQ(
        choice=cls(
            object_class=m.ObjectClass(
                basic_object_class=choice_of(m.BasicObjectClass, object_class)
            ),
            object_scope=choice_of(m.GetNameListRequest.ObjectScope, scope, scope_value),
            continue_after=continue_after,
        )
    )


def get_variable_access_attributes(name: m.ObjectName) -> m.ConfirmedServiceRequest:
    return _REQ(choice=m.GetVariableAccessAttributesRequest(name=name))


def define_named_variable_list(
    name: m.ObjectName, members: Iterable[Any]
) -> m.ConfirmedServiceRequest:
    return _REQ(
        choice=m.DefineNamedVariableListRequest(
            variable_list_name=name, list_of_variable=var_defs(members)
        )
    )


def get_named_variable_list_attributes(name: m.ObjectName) -> m.ConfirmedServiceRequest:
    return request("getNamedVariableListAttributes", name)


def delete_named_variable_list(
    names: Iterable[m.ObjectName], scope: str = "specific", domain: str | None = None
) -> m.ConfirmedServiceRequest:
    return _REQ(
        choice=m.DeleteNamedVariableListRequest(
            scope_of_delete=choice_of(m.ScopeOfDelete, scope),
            list_of_variable_list_name=m.DeleteNamedVariableListRequest.ListOfVariableListName(
                object_name=list(names)
            ),
            domain_name=domain,
        )
    )


def file_open(name: str | Sequence[str], position: int = 0) -> m.ConfirmedServiceRequest:
    return _REQ(choice=m.FileOpenRequest(file_name=file_name(name), initial_position=position))


def file_read(frsm: int) -> m.ConfirmedServiceRequest:
    return _REQ(choice=_REQ.FileRead(value=frsm))


def file_close(frsm: int) -> m.ConfirmedServiceRequest:
    return _REQ(choice=_REQ.FileClose(value=frsm))


def file_delete(name: str | Sequence[str]) -> m.ConfirmedServiceRequest:
    return request("fileDelete", file_name(name))


def file_directory(
    spec: str | Sequence[str] | None = None, continue_after: str | Sequence[str] | None = None
) -> m.ConfirmedServiceRequest:
    return _REQ(
        choice=m.FileDirectoryRequest(
            file_specification=file_name(spec) if spec else None,
            continue_after=file_name(continue_after) if continue_after else None,
        )
    )


def obtain_file(
    source: str | Sequence[str], destination: str | Sequence[str]
) -> m.ConfirmedServiceRequest:
    return _REQ(
        choice=m.ObtainFileRequest(
            source_file=file_name(source), destination_file=file_name(destination)
        )
    )


# ---------------------------------------------------------------------------------- PDUs
def confirmed_request(invoke_id: int, service: m.ConfirmedServiceRequest) -> m.Mmspdu:
    return m.Mmspdu(choice=m.ConfirmedRequestPdu(invoke_id=invoke_id, service=service))


def confirmed_response(invoke_id: int, service: m.ConfirmedServiceResponse) -> m.Mmspdu:
    return m.Mmspdu(choice=m.ConfirmedResponsePdu(invoke_id=invoke_id, service=service))


def _visible(text: str) -> str:
    # additionalDescription is a VisibleString: texts may quote peer input.
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:200]


def service_error(error_class: str, code: str, text: str = "", *, cls: type = m.ServiceError):
    """ServiceError (or a subclass such as ``Mmspdu.InitiateErrorPdu``) of class and code."""
    if error_class == "others":
        holder = m.ServiceError.ErrorClass(choice=int(code))
    else:
        group = alternative(m.ServiceError.ErrorClass, error_class)
        holder = m.ServiceError.ErrorClass(choice=choice_of(group, code))
    return cls(error_class=holder, additional_description=_visible(text) or None)


def error_parts(error: m.ServiceError) -> tuple[str, str, str]:
    """``(error class, code, text)`` of a ServiceError."""
    holder = error.error_class
    group = name_of(holder)
    code = str(holder.choice) if group == "others" else name_of(holder.choice)
    return group, code, error.additional_description or ""


def confirmed_error(invoke_id: int, error_class: str, code: str, text: str = "") -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.ConfirmedErrorPdu(
            invoke_id=invoke_id, service_error=service_error(error_class, code, text)
        )
    )


def reject(invoke_id: int | None, reason: str) -> m.Mmspdu:
    """rejectPDU of ``group:reason`` (``confirmed-requestPDU:invalid-invokeID``...)."""
    group, _, code = reason.partition(":")
    holder = alternative(m.RejectPdu.RejectReason, group)
    return m.Mmspdu(
        choice=m.RejectPdu(
            original_invoke_id=invoke_id,
            reject_reason=m.RejectPdu.RejectReason(choice=choice_of(holder, code)),
        )
    )


def reject_reason(pdu: m.RejectPdu) -> str:
    reason = pdu.reject_reason
    return f"{name_of(reason)}:{name_of(reason.choice)}"


def initiate_request(p: InitiateParams) -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.InitiateRequestPdu(
            local_detail_calling=p.max_pdu_size,
            proposed_max_serv_outstanding_calling=p.max_outstanding_calling,
            proposed_max_serv_outstanding_called=p.max_outstanding_called,
            proposed_data_structure_nesting_level=p.nesting_level,
            init_request_detail=m.InitiateRequestPdu.InitRequestDetail(
                proposed_version_number=p.version,
                proposed_parameter_cbb=p.parameter_cbb,
                services_supported_calling=services_to_bits(p.services),
            ),
        )
    )


def initiate_response(p: InitiateParams) -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.InitiateResponsePdu(
            local_detail_called=p.max_pdu_size,
            negotiated_max_serv_outstanding_calling=p.max_outstanding_calling,
            negotiated_max_serv_outstanding_called=p.max_outstanding_called,
            negotiated_data_structure_nesting_level=p.nesting_level,
            init_response_detail=m.InitiateResponsePdu.InitResponseDetail(
                negotiated_version_number=p.version,
                negotiated_parameter_cbb=p.parameter_cbb,
                services_supported_called=services_to_bits(p.services),
            ),
        )
    )


def initiate_params(pdu: m.InitiateRequestPdu | m.InitiateResponsePdu) -> InitiateParams:
    """The parameters of an initiate request (proposed) or response (negotiated).

    An absent ``localDetail`` means the default PDU size, an absent nesting level 5 (ISO 9506).
    """
    if isinstance(pdu, m.InitiateRequestPdu):
        d = pdu.init_request_detail
        return InitiateParams(
            max_pdu_size=65000 if pdu.local_detail_calling is None else pdu.local_detail_calling,
            max_outstanding_calling=pdu.proposed_max_serv_outstanding_calling,
            max_outstanding_called=pdu.proposed_max_serv_outstanding_called,
            nesting_level=_or(pdu.proposed_data_structure_nesting_level, 5),
            version=d.proposed_version_number,
            parameter_cbb=d.proposed_parameter_cbb,
            services=bits_to_services(d.services_supported_calling),
        )
    r = pdu.init_response_detail
    return InitiateParams(
        max_pdu_size=65000 if pdu.local_detail_called is None else pdu.local_detail_called,
        max_outstanding_calling=pdu.negotiated_max_serv_outstanding_calling,
        max_outstanding_called=pdu.negotiated_max_serv_outstanding_called,
        nesting_level=_or(pdu.negotiated_data_structure_nesting_level, 5),
        version=r.negotiated_version_number,
        parameter_cbb=r.negotiated_parameter_cbb,
        services=bits_to_services(r.services_supported_called),
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def information_report(
    spec: m.ObjectName | Iterable[Any], results: Iterable[m.AccessResult]
) -> m.Mmspdu:
    """unconfirmed-PDU informationReport (a report, CommandTermination...)."""
    return m.Mmspdu(
        choice=m.UnconfirmedPdu(
            service=m.UnconfirmedService(
                information_report=m.InformationReport(
                    variable_access_specification=_vas(spec),
                    list_of_access_result=m.ListOfAccessResult(access_result=list(results)),
                )
            )
        )
    )


def access_failure(code: str) -> m.AccessResult:
    """AccessResult failure of a DataAccessError name."""
    return m.AccessResult(choice=choice_of(m.DataAccessError, code))


def write_results(response: m.WriteResponse) -> list[str | None]:
    """Per item: None (success) or the DataAccessError name."""
    return [None if isinstance(c.choice, m.Null) else name_of(c.choice) for c in response.choice]
