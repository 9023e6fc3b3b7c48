//! A component of a world that is not `durable-object`.

wit_bindgen::generate!({ path: "wit", world: "other" });

struct Other;

impl Guest for Other {
    fn run() -> String {
        "not a durable object".to_string()
    }
}

export!(Other);
