-- Raw invocations (trace_items) in the range, filtered by Worker, colo and
-- outcome.
event_time >= {from:DateTime} AND event_time < {to:DateTime}
    AND {{fragment:worker_filter}}
    AND ({colo:String} = '' OR colo = {colo:String})
    AND ({outcome:String} = '' OR outcome = {outcome:String})
