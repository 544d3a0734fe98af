#pragma once
// Chat formatting for `quarot generate --chat`. quarot does not embed a Jinja
// engine: it recognises the template families real GGUFs carry (ChatML as in
// SmolLM2/Qwen2, Llama 3 headers, Llama 2 [INST]) from the template text and
// formats one user turn plus the assistant prefix; an unknown template is an error.
#include <string>

namespace quarot {

std::string apply_chat_template(const std::string& jinja_template, const std::string& user_message);

}  // namespace quarot
