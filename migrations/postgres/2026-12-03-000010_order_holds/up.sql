-- What holds an order for approval, as a value ('review' or 'mass_delete') beside the reason
-- in words, so holds are found by kind and not by matching their text.
ALTER TABLE orders ADD COLUMN held_by TEXT;
UPDATE orders SET held_by = CASE
    WHEN held_reason LIKE 'mass-delete guard%' THEN 'mass_delete'
    ELSE 'review' END
WHERE held_reason IS NOT NULL;
