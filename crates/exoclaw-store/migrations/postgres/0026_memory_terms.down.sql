DROP TRIGGER memory_terms_delete ON memories;
DROP TRIGGER memory_terms_update ON memories;
DROP TRIGGER memory_terms_insert ON memories;
DROP FUNCTION memory_terms_delete();
DROP FUNCTION memory_terms_update();
DROP FUNCTION memory_terms_insert();
DROP TABLE memory_terms;
