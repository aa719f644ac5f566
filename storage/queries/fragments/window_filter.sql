-- A window form's minutes in the range, of the Workers the filters name.
-- The window itself holds only those minutes; a subquery over it repeats
-- the range so that it shares this one filter with its outer query.
minute >= {from:DateTime} AND minute < {to:DateTime}
    AND {{fragment:worker_filter}}
