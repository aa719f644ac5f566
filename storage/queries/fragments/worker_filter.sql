-- The script, dispatch namespace and Dynamic Worker filters (each empty:
-- any), for a line "    AND {{fragment:worker_filter}}".
({script:String} = '' OR script_name = {script:String})
AND ({namespace:String} = '' OR dispatch_namespace = {namespace:String})
AND ({worker_id:String} = '' OR worker_id = {worker_id:String})
