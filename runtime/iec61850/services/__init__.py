"""ACSI services of the server over the :class:`~gridbind.iec61850.model.ServerModel` and an
association: :class:`.acsi.ServerServices` takes the typed ``ConfirmedServiceRequest`` of the
generated 8-2 classes and returns the typed response.

:mod:`.mmsview` is the MMS view of the model (names, type descriptions, Data values) in the
generated classes; :mod:`gridbind.iec61850.server_protocol` calls the services.
"""
