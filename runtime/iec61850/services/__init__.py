"""ACSI services of the server, as pure functions over the :class:`~gridbind.iec61850.model.
ServerModel` and an association: they take decoded requests and return response values.

:mod:`.mmsview` is the MMS view of the model (names, type descriptions, Data values) in a small
neutral form; :mod:`gridbind.iec61850.server` maps it to and from the codec's PDUs.
"""
