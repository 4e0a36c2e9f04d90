"""IEC 61850-7-2 control services over 8-2 (mapping notes section 6).

- :mod:`.addcause`: AddCause 0..27 and the LastApplError ``Error`` codes;
- :mod:`.models`: the sans-IO state machine of one controllable object (all control models);
- :mod:`.service`: the server side (Select as a read of ``$SBO``; SelectWithValue, Cancel,
  Operate, TimeActivatedOperate as writes of ``$SBOw`` / ``$Cancel`` / ``$Oper``; LastApplError
  and CommandTermination informationReports; the application's check and operate handlers);
- :mod:`.client`: the client helpers (operate / select / select_with_value / cancel).
"""
