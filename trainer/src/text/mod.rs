//! Text in and out: the tokenizer (`tokenizers`, from `tokenizer.json` or built from GGUF
//! metadata), the model's own chat template (minijinja), and incremental decoding.

pub mod chat_template;
pub mod prompt;
pub mod stream;
pub mod token_env;
pub mod tokenizer;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use prompt::Content;
pub use stream::TokenStream;
pub use tokenizer::Tokenizer;
