"""The server side of the ACSI services, as MMS services over the model (8-1/8-2 mapping).

:meth:`ServerServices.serve` takes the typed ``ConfirmedServiceRequest`` of the generated 8-2
classes and returns the typed ``ConfirmedServiceResponse`` (a handler table keyed by the request
class). Inside, a variable is addressed by its key ``("domain-specific", domain, item)`` (plus an
array index for an alternate access of one element) or ``("aa-specific", item)``; values are
the generated ``Data`` of :mod:`.mmsview`.

Service errors (a confirmed-ErrorPDU) are raised as :class:`ServiceError` with the XSD names of
the error class and code. Which ACSI service is which MMS service is in the mapping notes,
section 6; setting-group services are writes of ``LLN0$SP$SGCB$ActSG``/``EditSG``/``CnfEdit``
and reads/writes with FC SE.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from gridbind.errors import LocalError
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import Iec61850Error

from .. import mms
from ..association import Association, RejectReason
from ..files import FileStore, FileStoreError, Spool
from ..model import (
    FCDA,
    FCS,
    MAX_ACCESS_STEPS,
    ControlBlock,
    DataAccessError,
    DataAttribute,
    DataSet,
    LogicalNode,
    ModelError,
    ServerModel,
    children_with_fc,
)
from ..tracking import BlockTracking
from .mmsview import (
    data_matches,
    data_value,
    domain_list_names,
    domain_variable_names,
    page_names,
    python_value,
    type_description,
)

__all__ = [
    "ServiceError",
    "RequestRefused",
    "ServerServices",
    "object_name_of_fcda",
    "fcda_of_object_name",
    "access_steps",
    "variable_key",
]

#: FileAttributes, by its element (a new schema publication may rename the XSD type).
_FILE_ATTRIBUTES = mms.field_class(m.FileOpenResponse, "file_attributes")

#: Octets of a response that are not names/entries (PDU envelope, stanza): kept out of paging.
RESPONSE_OVERHEAD = 400
MAX_DATASET_MEMBERS = 256
#: Bounds on what clients may create: data sets per association (non-persistent) and
#: client-created persistent data sets per logical node.
MAX_AA_DATASETS = 64
MAX_DYNAMIC_DATASETS_PER_LN = 64
_DS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


#: Report control blocks (their writes have the report engine's rules).
_RCB_KINDS = ("URCB", "BRCB")


class ServiceError(Iec61850Error, LocalError):
    """A confirmed-ErrorPDU: ``error_class`` and ``code`` are XSD element names."""

    def __init__(self, error_class: str, code: str, text: str = "") -> None:
        super().__init__(f"{error_class}/{code}: {text}" if text else f"{error_class}/{code}")
        self.error_class = error_class
        self.code = code
        self.text = text


class RequestRefused(Iec61850Error, LocalError):
    """A request this server cannot even interpret (answered with a rejectPDU, not an error)."""

    def __init__(self, reason: RejectReason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


def variable_key(seq: m.VariableDefs.Sequence) -> tuple:
    """Key of one listOfVariable entry: the ObjectName key, plus its typed ``AlternateAccess``
    when it has one (resolved per variable, so that an unsupported one fails that variable)."""
    name = seq.variable_specification.name
    if name is None:
        raise RequestRefused(RejectReason.INVALID_ARGUMENT, "variable without a name")
    key = mms.name_key(name)
    return key if seq.alternate_access is None else key + (seq.alternate_access,)


def _member(key: tuple) -> m.VariableDefs.Sequence:
    return mms.variable(mms.dom(key[1], key[2]))


# DataAccessError -> ServiceError (for services that answer with a ServiceError, not per item).
_ACCESS_TO_SERVICE = {
    DataAccessError.OBJECT_NON_EXISTENT: ("access", "object-non-existent"),
    DataAccessError.OBJECT_ACCESS_DENIED: ("access", "object-access-denied"),
    DataAccessError.OBJECT_ACCESS_UNSUPPORTED: ("access", "object-access-unsupported"),
    DataAccessError.OBJECT_INVALIDATED: ("access", "object-invalidated"),
    DataAccessError.INVALID_ADDRESS: ("definition", "invalid-address"),
    DataAccessError.TYPE_INCONSISTENT: ("definition", "type-inconsistent"),
    DataAccessError.TYPE_UNSUPPORTED: ("definition", "type-unsupported"),
    DataAccessError.OBJECT_UNDEFINED: ("definition", "object-undefined"),
    DataAccessError.OBJECT_ATTRIBUTE_INCONSISTENT: ("definition", "object-attribute-inconsistent"),
}


def _service_error(exc: ModelError) -> ServiceError:
    cls, code = _ACCESS_TO_SERVICE.get(exc.code, ("access", "other"))
    return ServiceError(cls, code, str(exc))


def access_steps(alternate_access: Any) -> list[tuple]:
    """The steps (``("component", name)`` / ``("index", n)``) of a typed alternateAccess of
    the generated 8-2 classes (``AlternateAccess``), for :meth:`ServerModel.select_access`.

    One unnamed selection per level (``selectAccess``, or ``selectAlternateAccess`` nesting the
    next level); several selections (a restructured result) and ``named`` are refused."""
    steps: list[tuple] = []
    level = alternate_access
    while level is not None:
        if len(steps) > MAX_ACCESS_STEPS or len(level.choice) != 1:
            raise ModelError(
                DataAccessError.OBJECT_ACCESS_UNSUPPORTED,
                "alternateAccess with one selection per level only",
            )
        selection = level.choice[0].choice  # AlternateAccessSelection, or Named
        if not hasattr(selection, "choice"):
            raise ModelError(DataAccessError.OBJECT_ACCESS_UNSUPPORTED, "named alternateAccess")
        inner = selection.choice
        if hasattr(inner, "access_selection"):  # selectAlternateAccess: this step, then more
            access, level = inner.access_selection.choice, inner.alternate_access
        else:  # selectAccess: the last step
            access, level = getattr(inner, "choice", None), None
        if isinstance(access, bool) or not isinstance(access, (str, int)):
            raise ModelError(
                DataAccessError.OBJECT_ACCESS_UNSUPPORTED,
                "alternateAccess indexRange / allElements are not supported",
            )
        steps.append(("component", access) if isinstance(access, str) else ("index", access))
    return steps


def object_name_of_fcda(member: FCDA) -> tuple[str, str, str]:
    """``LD/LN.DO.DA`` + FC -> domain-specific ObjectName ``(LD, LN$FC$DO$DA)``."""
    ld, _, rest = member.ref.partition("/")
    ln, _, path = rest.partition(".")
    item = f"{ln}${member.fc}" + ("$" + path.replace(".", "$") if path else "")
    return ("domain-specific", ld, item)


def fcda_of_object_name(name: tuple) -> FCDA:
    """Domain-specific ``(LD, LN$FC$DO$DA)`` -> FCDA (checked shape, not existence)."""
    if name[0] != "domain-specific":
        raise ModelError(DataAccessError.INVALID_ADDRESS, "data set members are domain-specific")
    _, ld, item = name
    parts = item.split("$")
    if len(parts) < 3 or parts[1] not in FCS:
        raise ModelError(DataAccessError.INVALID_ADDRESS, f"not an FCD/FCDA name: {item!r}")
    ref = f"{ld}/{parts[0]}." + ".".join(parts[2:])
    return FCDA(ref, parts[1])


class ServerServices:
    """ACSI services of one server model (and an optional file store)."""

    def __init__(self, model: ServerModel, files: FileStore | None = None) -> None:
        self.model = model
        self.files = files
        #: The server's :class:`~..reporting.ReportEngine` (RCB writes go through it).
        self.reports: Any = None
        #: The server's :class:`~..logs.LogEngine` (LCB writes, readJournal, journal names).
        self.logs: Any = None
        #: Service tracking of control block writes (LTRK BrcbTrk & co.), when the SCL has it.
        self.tracking = BlockTracking(model)
        # One entry per service: the handler of the generated request class.
        self._handlers: dict[type, Callable[[Association, Any, float], Any]] = {
            m.ConfirmedServiceRequest.GetNameList: self._get_name_list,
            m.ConfirmedServiceRequest.ExtendedGetNameList: self._get_name_list,
            m.ReadRequest: self._read,
            m.WriteRequest: self._write,
            m.GetVariableAccessAttributesRequest: self._get_variable_access_attributes,
            m.DefineNamedVariableListRequest: self._define_named_variable_list,
            m.ObjectName: self._get_named_variable_list_attributes,
            m.DeleteNamedVariableListRequest: self._delete_named_variable_list,
            m.FileDirectoryRequest: self._file_directory,
            m.FileOpenRequest: self._file_open,
            m.ConfirmedServiceRequest.FileRead: self._file_read,
            m.ConfirmedServiceRequest.FileClose: self._file_close,
            m.FileName: self._file_delete,
            m.ReadJournalRequest: self._read_journal,
        }

    def serves(self, request: m.ConfirmedServiceRequest) -> bool:
        """True when :meth:`serve` has a handler for this request's service."""
        return type(request.choice) in self._handlers

    def serve(
        self, assoc: Association, request: m.ConfirmedServiceRequest, now: float | None = None
    ) -> m.ConfirmedServiceResponse:
        """Answer one confirmed request (raises :class:`ServiceError`, :class:`RequestRefused`).

        ``now`` (monotonic seconds; the clock when None) expires setting group reservations
        first and starts new ones."""
        handler = self._handlers.get(type(request.choice))
        if handler is None:
            raise ServiceError("service", "other", f"{mms.service_of(request)} is not served")
        return m.ConfirmedServiceResponse(choice=handler(assoc, request.choice, self.expire(now)))

    # ---------------------------------------------------------------- typed requests
    def _get_name_list(self, assoc: Association, req: m.GetNameListRequest, now: float) -> Any:
        oc = req.object_class.basic_object_class
        if oc is None:
            raise ServiceError("access", "object-access-unsupported", "extended object class")
        scope = req.object_scope
        scope_name = mms.name_of(scope)
        # domainSpecific is the only scope whose choice is the (string) domain name
        domain = scope.choice if isinstance(scope.choice, str) else None
        names, more = self.get_name_list(
            assoc, mms.name_of(oc), scope_name, domain, req.continue_after
        )
        cls = (
            m.ConfirmedServiceResponse.ExtendedGetNameList
            if isinstance(req, m.ConfirmedServiceRequest.ExtendedGetNameList)
            else m.ConfirmedServiceResponse.GetNameList
        )
        return cls(
            list_of_identifier=m.GetNameListResponse.ListOfIdentifier(identifier=names),
            more_follows=more,
        )

    def _spec_keys(self, assoc: Association, spec: m.VariableAccessSpecification) -> list:
        if isinstance(spec.choice, m.VariableDefs):
            return [variable_key(seq) for seq in spec.choice.sequence]
        if isinstance(spec.choice, m.ObjectName):
            ds = self._dataset(assoc, mms.name_key(spec.choice))
            return [object_name_of_fcda(member) for member in ds.members]
        raise RequestRefused(RejectReason.INVALID_ARGUMENT, "empty variableAccessSpecification")

    def _read(self, assoc: Association, req: m.ReadRequest, now: float) -> m.ReadResponse:
        keys = self._spec_keys(assoc, req.variable_access_specification)
        results = [self.read_variable(assoc, key) for key in keys]
        return m.ReadResponse(list_of_access_result=m.ListOfAccessResult(access_result=results))

    def _write(self, assoc: Association, req: m.WriteRequest, now: float) -> m.WriteResponse:
        keys = self._spec_keys(assoc, req.variable_access_specification)
        codes = self.write_variables(assoc, keys, req.list_of_data.data, now)
        return m.WriteResponse(
            choice=[
                m.WriteResponse.Choice(
                    choice=mms.choice_of(m.DataAccessError, code) if code else m.Null()
                )
                for code in codes
            ]
        )

    def read_variables(
        self, assoc: Association, keys: list[tuple], now: float | None = None
    ) -> list[m.AccessResult]:
        """Read variables by key (ObjectName key, plus an alternate access); ``now``
        (monotonic seconds) expires setting group reservations first."""
        self.expire(now)
        return [self.read_variable(assoc, key) for key in keys]

    def write_variables(
        self, assoc: Association, keys: list[tuple], datas: list[m.Data], now: float | None = None
    ) -> list[str | None]:
        """Write variables by key: per variable None (success) or a DataAccessError name;
        ``now`` (monotonic seconds) expires and starts setting group reservations."""
        now = self.expire(now)
        if len(keys) != len(datas):
            raise ServiceError(
                "definition", "type-inconsistent", f"{len(keys)} variables, {len(datas)} values"
            )
        return [
            self.write_variable(assoc, key, data, now)
            for key, data in zip(keys, datas, strict=True)
        ]

    def _get_variable_access_attributes(
        self, assoc: Association, req: m.GetVariableAccessAttributesRequest, now: float
    ) -> m.GetVariableAccessAttributesResponse:
        if req.name is None:
            raise ServiceError("access", "object-access-unsupported", "by address")
        deletable, td = self.get_variable_access_attributes(assoc, mms.name_key(req.name))
        return m.GetVariableAccessAttributesResponse(mms_deletable=deletable, type_description=td)

    def _define_named_variable_list(
        self, assoc: Association, req: m.DefineNamedVariableListRequest, now: float
    ) -> Any:
        members = [variable_key(seq) for seq in req.list_of_variable.sequence]
        self.define_named_variable_list(assoc, mms.name_key(req.variable_list_name), members)
        return m.ConfirmedServiceResponse.DefineNamedVariableList()

    def _get_named_variable_list_attributes(
        self, assoc: Association, name: m.ObjectName, now: float
    ) -> m.GetNamedVariableListAttributesResponse:
        deletable, members = self.get_named_variable_list_attributes(assoc, mms.name_key(name))
        return m.GetNamedVariableListAttributesResponse(
            mms_deletable=deletable, list_of_variable=mms.var_defs(map(_member, members))
        )

    def _delete_named_variable_list(
        self, assoc: Association, req: m.DeleteNamedVariableListRequest, now: float
    ) -> m.DeleteNamedVariableListResponse:
        scope = mms.name_of(req.scope_of_delete) if req.scope_of_delete else "specific"
        names = req.list_of_variable_list_name.object_name if req.list_of_variable_list_name else []
        matched, deleted = self.delete_named_variable_list(
            assoc, scope, [mms.name_key(n) for n in names]
        )
        return m.DeleteNamedVariableListResponse(number_matched=matched, number_deleted=deleted)

    def _file_directory(
        self, assoc: Association, req: m.FileDirectoryRequest, now: float
    ) -> m.FileDirectoryResponse:
        spec = mms.segments(req.file_specification) if req.file_specification else None
        after = mms.segments(req.continue_after) if req.continue_after else None
        entries, more = self.file_directory(assoc, spec, after)
        return m.FileDirectoryResponse(
            list_of_directory_entry=m.FileDirectoryResponse.ListOfDirectoryEntry(
                directory_entry=[
                    m.DirectoryEntry(
                        file_name=mms.file_name(segs),
                        file_attributes=_FILE_ATTRIBUTES(size_of_file=size, last_modified=mtime),
                    )
                    for segs, size, mtime in entries
                ]
            ),
            more_follows=more,
        )

    def _file_open(
        self, assoc: Association, req: m.FileOpenRequest, now: float
    ) -> m.FileOpenResponse:
        frsm, size, mtime = self.file_open(assoc, mms.segments(req.file_name), req.initial_position)
        return m.FileOpenResponse(
            frsm_id=frsm,
            file_attributes=_FILE_ATTRIBUTES(size_of_file=size, last_modified=mtime),
        )

    def _file_read(self, assoc: Association, req: Any, now: float) -> m.FileReadResponse:
        data, more = self.file_read(assoc, req.value)
        return m.FileReadResponse(file_data=data, more_follows=more)

    def _file_close(self, assoc: Association, req: Any, now: float) -> Any:
        self.file_close(assoc, req.value)
        return m.ConfirmedServiceResponse.FileClose()

    def _read_journal(self, assoc: Association, req: m.ReadJournalRequest, now: float) -> Any:
        if self.logs is None:
            raise ServiceError("access", "object-non-existent", "the IED has no logs")
        from ..logs.lcb import JournalError

        try:
            return self.logs.read_journal(req)
        except JournalError as exc:
            raise ServiceError(exc.error_class, exc.code, exc.text) from None

    def _file_delete(self, assoc: Association, name: m.FileName, now: float) -> Any:
        self.file_delete(assoc, mms.segments(name))
        return m.ConfirmedServiceResponse.FileDelete()

    # ---------------------------------------------------------------- names
    def get_name_list(
        self,
        assoc: Association,
        object_class: str,
        scope: str,
        domain: str | None,
        continue_after: str | None,
    ) -> tuple[list[str], bool]:
        """getNameList / extendedGetNameList (GetServerDirectory(LD),
        GetLogicalDeviceDirectory, GetLogicalNodeDirectory, data set names)."""
        if object_class == "domain":
            if scope != "vmdSpecific":
                raise ServiceError(
                    "access", "object-access-unsupported", "domains are vmd-specific"
                )
            names = sorted(self.model.children)
        elif object_class in ("namedVariable", "namedVariableList"):
            if scope == "domainSpecific":
                try:
                    ld = self.model.logical_device(domain or "")
                except ModelError as exc:
                    raise _service_error(exc) from None
                names = (
                    domain_variable_names(ld)
                    if object_class == "namedVariable"
                    else domain_list_names(ld)
                )
            elif scope == "aaSpecific":
                names = sorted(assoc.datasets) if object_class == "namedVariableList" else []
            else:
                names = []
        elif object_class == "journal" and scope == "domainSpecific":
            try:  # GetLogicalNodeDirectory(LOG): the logs of an LD
                self.model.logical_device(domain or "")
            except ModelError as exc:
                raise _service_error(exc) from None
            names = self.logs.journal_names(domain) if self.logs is not None else []
        else:
            raise ServiceError(
                "access", "object-access-unsupported", f"object class {object_class}"
            )
        budget = assoc.params.max_pdu_size - RESPONSE_OVERHEAD
        return page_names(names, continue_after, budget)

    # ---------------------------------------------------------------- read / write
    def _resolve(self, assoc: Association, name: tuple) -> tuple[Any, str]:
        """An ObjectName -> (node, FC). A fourth member is its alternateAccess: an index (one
        array element) or the list of steps of :meth:`ServerModel.select_access`."""
        if name[0] == "domain-specific":
            node, fc = self.model.find_mms(name[1], name[2])
            if len(name) == 4:
                access = name[3]
                if isinstance(access, m.AlternateAccess):
                    steps = access_steps(access)
                elif isinstance(access, int):
                    steps = [("index", access)]
                else:
                    steps = list(access)
                node, fc = self.model.select_access(node, fc, steps)
            return node, fc
        raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"no {name[0]} variable {name[-1]!r}")

    def read_variable(self, assoc: Association, name: tuple) -> m.AccessResult:
        try:
            node, fc = self._resolve(assoc, name)
            self.model.check_read(node, fc, assoc.peer)  # the application's read hooks
            return m.AccessResult(choice=data_value(self.model, node, fc, assoc.key))
        except ModelError as exc:
            return mms.access_failure(exc.code)

    def write_variable(
        self, assoc: Association, name: tuple, data: m.Data, now: float | None = None
    ) -> str | None:
        node: Any = None
        fc, code = "", None  # (what the tracking gets when the name does not resolve)
        try:
            node, fc = self._resolve(assoc, name)
            if isinstance(node, LogicalNode):
                raise ModelError(DataAccessError.OBJECT_ACCESS_DENIED, "an LN is not written whole")
            data_matches(node, fc, data)
            leaves = list(self._leaves(node, fc, data))
            converted = [(attr, python_value(attr, d)) for attr, d in leaves]
            # All or nothing: every attribute of a structured write is checked before the
            # first one is stored.
            staged = [self._stage_attr(assoc, attr, fc, value, now) for attr, value in converted]
            for store in staged:
                store()
        except ModelError as exc:
            code = exc.code
        self.tracking.record_write(node, fc, code, assoc.peer)  # BTS/UTS/LTS/GTS/STS
        return code

    def _leaves(self, node: Any, fc: str, data: m.Data) -> Iterator[tuple[DataAttribute, m.Data]]:
        if isinstance(node, DataAttribute) and not node.children and not node.elements:
            yield node, data
            return
        if getattr(node, "elements", None):  # DA or SDO array
            children = node.elements
        elif isinstance(node, DataAttribute):
            children = list(node.children.values())
        else:
            children = list(children_with_fc(node, fc))
        items = data.choice
        if not isinstance(items, (m.Structure, m.Array)):
            # data_matches has already held the shape to the node's; this keeps it so.
            raise ModelError(DataAccessError.TYPE_INCONSISTENT, f"{node.name}: not constructed")
        for child, item in zip(children, items.data, strict=True):
            yield from self._leaves(child, fc, item)

    def _stage_attr(
        self, assoc: Association, attr: DataAttribute, fc: str, value: Any, now: float | None
    ) -> Callable[[], None]:
        """Check the write of one basic attribute; returns what stores it."""
        cb = attr.parent
        if isinstance(cb, ControlBlock) and cb.kind == "SGCB":
            ln = cb.parent
            if ln is None or ln.parent is None:  # only a control block outside any model
                raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"{cb.name} has no LD")
            ld = ln.parent.name
            if attr.name not in ("ActSG", "EditSG", "CnfEdit"):
                raise ModelError(DataAccessError.OBJECT_ACCESS_DENIED, f"SGCB.{attr.name}")
            if attr.name == "CnfEdit" and value is not True:
                raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, "CnfEdit takes true")
            self._check_sg_offered(attr.name)
            # SelectActiveSG & co. are client writes too: the application may veto them.
            self.model.check_write_hooks(attr, fc, value, assoc.peer)
            # (an SGCB is never written whole: NumOfSG is read-only, so these run alone)
            if attr.name == "ActSG":
                return lambda: self.model.select_active_sg(ld, value)
            if attr.name == "EditSG":
                return lambda: self.model.select_edit_sg(ld, value, assoc.key, now)
            return lambda: self.model.confirm_edit_sg(ld, assoc.key)
        if fc == "SE":
            self._check_sg_offered("SE")
        value = self.model.check_write(attr, fc, value, originator=assoc.peer, editor=assoc.key)
        if isinstance(cb, ControlBlock) and attr.name == "DatSet" and value:
            try:
                self.model.dataset(value)  # must name an existing persistent data set
            except ModelError:
                # The attribute exists; the value written is what is wrong (as libiec61850).
                raise ModelError(
                    DataAccessError.OBJECT_VALUE_INVALID,
                    f"{cb.name}.DatSet: no persistent data set {value!r}",
                ) from None
        when = time.monotonic() if now is None else now  # (the services run on monotonic time)
        if isinstance(cb, ControlBlock) and cb.kind in _RCB_KINDS and self.reports is not None:
            # reservation, enable, GI, PurgeBuf: the report engine's rules
            return self.reports.stage_write(assoc, cb, attr, value, when)
        if isinstance(cb, ControlBlock) and cb.kind == "LCB" and self.logs is not None:
            return self.logs.stage_write(assoc, cb, attr, value, when)
        return lambda: self.model.store_write(attr, fc, value)

    # ---------------------------------------------------------------- setting group reservations
    def _check_sg_offered(self, what: str) -> None:
        """SCL Services: SelectActiveSG needs SettingGroups, the edit services SGEdit."""
        limits = self.model.limits
        offered = limits.sg_select_active if what == "ActSG" else limits.sg_edit
        if not offered:
            service = "SelectActiveSG" if what == "ActSG" else "setting group editing (SGEdit)"
            raise ModelError(
                DataAccessError.OBJECT_ACCESS_DENIED, f"{service} is not in the IED's Services"
            )

    def expire(self, now: float | None = None) -> float:
        """End the SelectEditSG reservations whose ``ResvTms`` ran out at ``now`` (monotonic
        seconds; the clock when None). Returns ``now``. The server calls it at
        :meth:`next_deadline` (reads and writes call it too)."""
        if now is None:
            now = time.monotonic()
        self.model.expire_sg_reservations(now)
        return now

    def next_deadline(self) -> float | None:
        """When :meth:`expire` must run next (monotonic seconds), or None."""
        return self.model.next_sg_deadline()

    # ---------------------------------------------------------------- definitions
    def get_variable_access_attributes(
        self, assoc: Association, name: tuple
    ) -> tuple[bool, m.TypeDescription]:
        """GetDataDirectory / GetDataDefinition: (mmsDeletable, type description)."""
        try:
            node, fc = self._resolve(assoc, name)
        except ModelError as exc:
            raise _service_error(exc) from None
        return False, type_description(node, fc)

    # ---------------------------------------------------------------- data sets
    def _dataset(self, assoc: Association, name: tuple) -> DataSet:
        try:
            if name[0] == "domain-specific":
                ln_name, sep, ds_name = name[2].partition("$")
                if not sep:
                    raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, "bad data set name")
                return self.model.dataset(f"{name[1]}/{ln_name}.{ds_name}")
            if name[0] == "aa-specific" and name[1] in assoc.datasets:
                return assoc.datasets[name[1]]
        except ModelError as exc:
            raise _service_error(exc) from None
        raise ServiceError("access", "object-non-existent", f"no data set {name[-1]!r}")

    def get_named_variable_list_attributes(self, assoc: Association, name: tuple):
        """GetDataSetDirectory: (mmsDeletable, member ObjectNames)."""
        ds = self._dataset(assoc, name)
        return ds.deletable, [object_name_of_fcda(m) for m in ds.members]

    def define_named_variable_list(
        self, assoc: Association, name: tuple, members: list[tuple]
    ) -> None:
        """CreateDataSet: domain-specific name -> persistent in that LN; aa-specific ->
        non-persistent, for this association only."""
        if not members:
            raise ServiceError("definition", "object-attribute-inconsistent", "no members")
        if len(members) > MAX_DATASET_MEMBERS:
            raise ServiceError("resource", "capability-unavailable", "too many members")
        self._check_dyn_dataset_limits(assoc, len(members))
        fcdas = []
        for member in members:
            try:
                fcda = fcda_of_object_name(member)
                self.model.find(fcda.ref, fcda.fc)
            except ModelError as exc:
                raise ServiceError("definition", "object-undefined", str(exc)) from None
            fcdas.append(fcda)
        if name[0] == "domain-specific":
            ln_name, sep, ds_name = name[2].partition("$")
            if not sep or not _DS_NAME.match(ds_name):
                raise ServiceError("definition", "invalid-address", f"bad name {name[2]!r}")
            try:
                ln = self.model.logical_node(f"{name[1]}/{ln_name}")
            except ModelError as exc:
                raise _service_error(exc) from None
            if ds_name in ln.datasets or ds_name in ln.children:
                raise ServiceError("definition", "object-exists", f"{ds_name} exists")
            if sum(ds.deletable for ds in ln.datasets.values()) >= MAX_DYNAMIC_DATASETS_PER_LN:
                raise ServiceError("resource", "capability-unavailable", "too many data sets")
            ln.datasets[ds_name] = DataSet(
                ds_name, fcdas, owner=ln, persistent=True, deletable=True
            )
        elif name[0] == "aa-specific":
            if not _DS_NAME.match(name[1]):
                raise ServiceError("definition", "invalid-address", f"bad name {name[1]!r}")
            if name[1] in assoc.datasets:
                raise ServiceError("definition", "object-exists", f"{name[1]} exists")
            if len(assoc.datasets) >= MAX_AA_DATASETS:
                raise ServiceError("resource", "capability-unavailable", "too many data sets")
            assoc.datasets[name[1]] = DataSet(
                name[1], fcdas, owner=None, persistent=False, deletable=True
            )
        else:
            raise ServiceError("access", "object-access-unsupported", "vmd-specific data sets")

    def _check_dyn_dataset_limits(self, assoc: Association, members: int) -> None:
        """SCL Services DynDataSet: CreateDataSet offered at all, ``max`` dynamic data sets
        (the server's client-created persistent ones plus this association's own) and
        ``maxAttributes`` members."""
        limits = self.model.limits
        if not limits.dyn_datasets:
            raise ServiceError(
                "access", "object-access-unsupported", "no DynDataSet in the IED's Services"
            )
        most = limits.dyn_dataset_attributes
        if most is not None and members > most:
            raise ServiceError(
                "resource", "capability-unavailable", f"more than {most} members (maxAttributes)"
            )
        if limits.dyn_datasets_max is not None:
            existing = len(assoc.datasets) + sum(
                ds.deletable for ln in self.model.iter_nodes() for ds in ln.datasets.values()
            )
            if existing >= limits.dyn_datasets_max:
                raise ServiceError(
                    "resource",
                    "capability-unavailable",
                    f"{existing} dynamic data sets exist (DynDataSet max)",
                )

    def delete_named_variable_list(
        self, assoc: Association, scope: str, names: list[tuple]
    ) -> tuple[int, int]:
        """DeleteDataSet (specific only): (numberMatched, numberDeleted). A data set defined in
        SCL, or referenced by a control block, is matched but not deleted."""
        if scope != "specific":
            raise ServiceError("service", "object-constraint-conflict", "only specific deletes")
        matched = deleted = 0
        for name in names:
            try:
                ds = self._dataset(assoc, name)
            except ServiceError:
                continue
            matched += 1
            if not ds.deletable or (ds.persistent and self.model.dataset_users(ds)):
                continue
            if ds.owner is not None:
                del ds.owner.datasets[ds.name]
            else:
                assoc.datasets.pop(ds.name, None)
            deleted += 1
        return matched, deleted

    # ---------------------------------------------------------------- files
    def _store(self) -> FileStore:
        if self.files is None:
            raise ServiceError("file", "file-access-denied", "this server has no file store")
        if not self.model.limits.file_handling:
            raise ServiceError(
                "file", "file-access-denied", "no FileHandling in the IED's Services"
            )
        return self.files

    def file_store(self) -> FileStore:
        """The file store (a ``file-access-denied`` ServiceError when there is none)."""
        return self._store()

    @staticmethod
    def _file_error(exc: FileStoreError) -> ServiceError:
        return ServiceError("file", exc.code, str(exc))

    def file_directory(
        self, assoc: Association, spec: list[str] | None, continue_after: list[str] | None
    ) -> tuple[list[tuple[list[str], int, str]], bool]:
        """GetServerDirectory(FILE) / GetFileAttributeValues: entries (name parts, size,
        GeneralizedTime) and moreFollows."""
        store = self._store()
        try:
            after = store.check_name(continue_after) if continue_after else None
            entries = store.directory(spec or None, after)
        except FileStoreError as exc:
            raise self._file_error(exc) from None
        budget = assoc.params.max_pdu_size - RESPONSE_OVERHEAD
        out: list[tuple[list[str], int, str]] = []
        used = 0
        for entry in entries:
            cost = len(entry.name) + 160
            if out and used + cost > budget:
                return out, True
            out.append((_segments(entry.name), entry.size, _gtime(entry.mtime)))
            used += cost
        return out, False

    def file_open(self, assoc: Association, name: list[str], position: int):
        store = self._store()
        try:
            frsm, entry = store.open(name, position)
        except FileStoreError as exc:
            raise self._file_error(exc) from None
        assoc.files[frsm] = entry.name
        return frsm, entry.size, _gtime(entry.mtime)

    def file_read(self, assoc: Association, frsm: int) -> tuple[bytes, bool]:
        store = self._store()
        if frsm not in assoc.files:
            raise ServiceError("file", "other", f"frsmID {frsm} is not open in this association")
        try:
            # octets are hex in XER: two characters each.
            return store.read(frsm, max(64, (assoc.params.max_pdu_size - RESPONSE_OVERHEAD) // 2))
        except FileStoreError as exc:
            raise self._file_error(exc) from None

    def file_close(self, assoc: Association, frsm: int) -> None:
        store = self._store()
        if assoc.files.pop(frsm, None) is None:
            raise ServiceError("file", "other", f"frsmID {frsm} is not open in this association")
        try:
            store.close(frsm)
        except FileStoreError as exc:
            raise self._file_error(exc) from None

    def file_delete(self, assoc: Association, name: list[str]) -> None:
        try:
            self._store().delete(name)
        except FileStoreError as exc:
            raise self._file_error(exc) from None

    def obtain_file_check(self, dest: list[str]) -> None:
        """SetFile (obtainFile), before the server fetches the file from the client: the store
        is writable and ``dest`` a valid name that is not taken (``duplicate-filename`` unless
        the store allows overwriting)."""
        try:
            self._store().check_target(dest)
        except FileStoreError as exc:
            raise self._file_error(exc) from None

    def obtain_file_store(self, dest: list[str], data: bytes | Spool) -> None:
        """SetFile (obtainFile), once the file is fetched: store it (checked again, as another
        association may have taken the name meanwhile)."""
        try:
            self._store().store(dest, data)
        except FileStoreError as exc:
            raise self._file_error(exc) from None

    def association_ended(self, assoc: Association) -> None:
        """Release what an association held (open files, setting group edit reservations and
        their unconfirmed values; its aa-specific data sets go with it). The server calls it
        on conclude and on abort."""
        self.model.release_sg_edits(assoc.key)
        if self.files is not None and assoc.files:
            self.files.close_all(list(assoc.files))
        assoc.files.clear()


def _segments(name: str) -> list[str]:
    return name.split("/")


def _gtime(mtime: float) -> str:
    return datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y%m%d%H%M%SZ")
