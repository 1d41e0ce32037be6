//! The injection rules: stable ids, descriptions, and the patterns matched
//! on normalised text (lowercase, single spaces, line breaks kept). `\s?`
//! between words also catches words run together by spelling-out
//! (`i g n o r e  a l l` becomes `ignoreall`). `\b` is compiled as an ASCII
//! word boundary, which keeps every pattern on the fast DFA engines.

use crate::markers::MARKER_PATTERN;

pub(crate) const ENCODED_PAYLOAD: &str = "inject.encoded_payload";
pub(crate) const CLASSIFIER: &str = "inject.classifier";

/// Every rule: `(id, description)`. Ids are stable: logs, metrics and
/// configuration refer to them.
pub const RULES: &[(&str, &str)] = &[
    (
        "inject.ignore_previous",
        "asks to ignore, disregard or forget previous/prior/above/system instructions, rules or prompts",
    ),
    (
        "inject.role_override",
        "tries to replace the assistant's role: \"you are now ...\", unrestricted personas, DAN, developer mode",
    ),
    (
        "inject.system_prompt_leak",
        "asks to reveal, print or repeat the system prompt or hidden instructions",
    ),
    (
        "inject.fake_system",
        "forged system turns and chat-template tokens (`system:` lines giving orders, `### system`, `<|im_start|>`, `[INST]`, `<<SYS>>`, `</s>`)",
    ),
    (
        "inject.marker_forgery",
        "contains (a variant of) exoclaw's own untrusted-content markers",
    ),
    (
        "inject.exfiltration",
        "asks to send secrets, keys, tokens or .env to a URL, or a markdown image that carries data to an external URL",
    ),
    (
        "inject.tool_coercion",
        "tells the model to run commands or call tools (addressed to the AI, or without asking), or forges tool-call markup",
    ),
    (
        ENCODED_PAYLOAD,
        "a long base64 blob that decodes to text another rule flags",
    ),
    (
        "inject.secret_request",
        "asks the assistant for the gateway's or its own secrets and hidden setup: keys, tokens and passwords it holds or is configured with, its environment, the text before the conversation",
    ),
    (
        CLASSIFIER,
        "a linear classifier over hashed word and character n-grams (trained on labelled personas, forged turns, claimed authority, requests for hidden configuration and instructions hidden in data) scores the text as an injection",
    ),
];

/// Patterns per rule, in the order of `RULES`.
pub(crate) const PATTERNS: &[(&str, &[&str])] = &[
    (
        "inject.ignore_previous",
        &[
            r"\b(?:ignore|disregard|forget|override|bypass|discard|abandon)\s?(?:(?:all|any|each|every|the|your|my|of|these|those|everything|you've|you\s?have|been|were|given|received)\s?){0,5}(?:previous|prior|above|preceding|earlier|former|original|initial|existing|system|safety|developer)\s?(?:instructions?|rules?|prompts?|directives?|guidelines?|guidance|commands?|context|messages?|constraints?|restrictions?|programming|orders?|polic(?:y|ies)|conversation)\b",
            r"\b(?:ignore|disregard|forget)\s?(?:all|everything)\s?(?:of\s?)?(?:the\s?|that\s?)?(?:above|before|previous|said\s?before|you\s?were\s?told)\b",
            r"\b(?:ignore|disregard|forget)\s?(?:all\s?)?(?:of\s?)?your\s?(?:instructions|rules|guidelines|programming|directives|system\s?prompt|training|restrictions|safety)\b",
            r"\bdo\s?not\s?(?:follow|obey)\s?(?:your|the|any)\s?(?:previous|prior|system|original|initial)\s?(?:instructions|rules|prompt)\b",
        ],
    ),
    (
        "inject.role_override",
        &[
            r"\byou\s?are\s?now\s?(?:(?:a|an|the|my|in|called|named)\s?)?(?:dan\b|unrestricted|unfiltered|uncensored|jailbroken|evil|free\s?(?:from|of)|no\s?longer|(?:developer|dev|god|jailbreak)\s?mode|[a-z]*gpt\b|different\s?(?:ai|assistant|model|persona|character)|new\s?(?:ai|assistant|persona|character|model|identity)|ai\s?(?:without|with\s?no)|without\s?(?:any\s?)?(?:restrictions|limits|filters|rules|guidelines))",
            r"\byou\s?are\s?no\s?longer\s?(?:an?\s?)?(?:ai\b|assistant|bound|restricted|limited|chatgpt|claude|required\s?to\s?follow|(?:a\s?)?language\s?model)",
            r"\b(?:act|behave|respond|roleplay|role-play|pretend)\s?(?:as|like|to\s?be)\s?(?:if\s?you\s?(?:are|were)\s?)?(?:an?\s?)?(?:dan\b|unrestricted|unfiltered|uncensored|jailbroken|evil\s?(?:ai|assistant|bot|twin)|(?:ai|assistant|model|chatbot)\s?(?:without|with\s?no|that\s?has\s?no|that\s?ignores))",
            r"\b(?:adopt|assume|take\s?on|switch\s?to|become|enable|activate|embody|enter)\s?(?:(?:a|an|the|this|your|my)\s?)?(?:new|alternate|secret|unrestricted|different|evil)\s?persona\b",
            r"\b(?:you\s?(?:are|will\s?be|are\s?now)\s?(?:in|running\s?in|operating\s?in)|enable\s?your|activate\s?your|enter|switch\s?to)\s?(?:the\s?)?(?:developer|dev|jailbreak|dan)\s?mode\b[^\n]{0,40}\b(?:no\s?(?:restrictions|rules|filters|limits)|uncensored|unfiltered|anything|ignore)",
            r"\b(?:you\s?(?:are|will\s?be|are\s?now)\s?(?:in|running\s?in|operating\s?in)|enable\s?your|activate\s?your)\s?(?:developer|dev|jailbreak|dan)\s?mode\b",
            r"\b(?:chatgpt|gpt|claude|assistant|ai|model)\s?with\s?(?:developer|dev|dan|jailbreak)\s?mode\b",
            r"\bdan\s?mode\b|\bdo\s?anything\s?now\b",
            r"\b(?:you\s?are|you're|act\s?as|pretend\s?to\s?be|play\s?the\s?role\s?of|stay\s?in\s?character\s?as)\s?dan\b",
        ],
    ),
    (
        "inject.system_prompt_leak",
        &[
            r"\b(?:reveal|print|repeat|show|output|display|tell|give|leak|dump|recite|write\s?out|copy|paste|share|spell\s?out|list|provide|disclose|expose|translate|summarize|summarise|echo|return|what\s?(?:is|are|was|were))\s?(?:me\s?|us\s?)?(?:back\s?)?(?:all\s?)?(?:of\s?)?your\s?(?:(?:full|entire|complete|exact|original|initial|hidden|secret|internal|verbatim|underlying|real|actual|first|confidential)\s?)*(?:system\s?(?:prompt|message|instructions?)|(?:initial|original|hidden|secret|internal|confidential)\s?(?:prompt|instructions?|rules)|pre-?prompt|instructions\s?(?:verbatim|word\s?for\s?word|exactly)|prompt(?:$|[^a-z\s]|\s(?:verbatim|above|text|exactly|word\s?for\s?word|in\s?full)\b))",
            r"\b(?:reveal|leak|dump|disclose|expose|exfiltrate)\s?(?:the\s?)?(?:system\s?prompt|hidden\s?instructions|initial\s?instructions|developer\s?(?:prompt|message))",
            r"\b(?:repeat|print|output|recite|copy)\s?(?:all\s?)?(?:of\s?)?(?:the\s?)?(?:words|text|everything|content|instructions)\s?(?:above|before\s?this|preceding\s?this)\b[^\n]{0,60}\b(?:verbatim|starting|begin|beginning|include\s?everything|word\s?for\s?word|code\s?block)",
        ],
    ),
    (
        "inject.fake_system",
        &[
            r"(?m)^\s?(?:#{1,6}\s?)?(?:\*\*)?\[?(?:system|sys)\]?\s?(?:prompt|message|override|instructions?|note|update|alert|notice)?(?:\*\*)?\s?:\s?(?:\*\*)?\s?(?:you\b|ignore|disregard|forget|new\s|override|from\s?now|the\s?(?:user|assistant|ai|model)\b|all\s|do\s?not|don't|never|always|important|attention|urgent|reset|admin|developer|assistant\b|switch)",
            r"(?m)^#{3,6}\s?(?:system|instruction|instructions|system\s?prompt)\s?:?\s?$",
            r"<\|(?:im_start|im_end|im_sep|system|user|assistant|start_header_id|end_header_id|eot_id|endoftext|begin_of_text|end_of_text|start|end|message|channel)\|>",
            r"\[/?inst\]|<</?sys>>",
            r"</s>\s?(?:<s>|\[inst\]|<\||(?:system|user|assistant|human)\s?:)",
        ],
    ),
    ("inject.marker_forgery", &[MARKER_PATTERN]),
    (
        "inject.exfiltration",
        &[
            r"\b(?:send|post|upload|exfiltrate|forward|transmit|leak|email|e-mail|submit|paste|beam|ship)\s?(?:(?:all|any|every|each|your|the|user's|users'|their|stored|saved|my|of|these|those|contents?|values?|current|local|environment|full|entire|complete)\s?){0,5}(?:secrets|api\s?keys?|tokens|access\s?tokens|passwords|credentials|\.env\b|env\s?(?:vars?|variables|file)|environment\s?variables|private\s?keys?|ssh\s?keys?|cookies|session\s?(?:ids|tokens))\b[^\n]{0,100}?\b(?:to|at|into|via|on)\s?(?:https?://|ftp://|wss?://|//|(?:[a-z0-9._%+-]+@)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|xyz|ru|cn|tk|top|site|me|co|dev|app|sh|info|biz|cc)\b|(?:my|this|the\s?following|our|an?\s?external|the\s?attacker's)\s?(?:server|url|endpoint|webhook|address|site|email|domain))",
            r"\b(?:send|post|upload|exfiltrate|forward|transmit|leak|email|submit)\s?(?:your|the\s?user's|users'|their|my|all|any)\s?(?:secret|api\s?key|key|token|password|credential)s?\b[^\n]{0,100}?\b(?:to|at|into|via)\s?(?:https?://|ftp://|wss?://|//|(?:[a-z0-9._%+-]+@)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|xyz|ru|cn|tk|top|site|me|co|dev|app|sh|info|biz|cc)\b|(?:my|this|the\s?following|our|an?\s?external)\s?(?:server|url|endpoint|webhook|address|site|email|domain))",
            r"!\[[^\]\n]{0,200}\]\(\s?(?:https?:)?//[^)\s?]+\?(?:(?:[^)\s]*&)?(?:data|d|q|query|secret|key|token|info|content|msg|message|text|payload|p|c|chat|conv|conversation|history|leak|s|x|pw|password|email|user|session|cookie|env|api_key|apikey|log|prompt)=|[^)\s]*=[^)\s&]*[\[{<$%]|[^)\s]*=[^)\s&]{24,})",
            r"\b(?:curl|wget)\b[^\n]{0,120}?(?:-d|--data(?:-binary|-raw|-urlencode)?|-f|--form|-t|--upload-file|--post-file|--body-file)\s?['\x22]?[a-z_]*=?@?[^\s'\x22]*(?:\.env\b|id_rsa|id_ed25519|id_ecdsa|\.ssh/|\.aws/credentials|\.netrc|\.git-credentials|/etc/shadow)",
            r"(?:\.env\b|id_rsa|id_ed25519|\.aws/credentials|\.netrc|\.git-credentials|/etc/shadow)[^\n|]{0,40}\|\s?(?:curl|nc|ncat|wget|telnet)\b",
            r"\b(?:scp|rsync)\b[^\n]{0,60}?(?:\.env\b|id_rsa|id_ed25519|id_ecdsa|\.aws/credentials|\.netrc|\.git-credentials|/etc/shadow)[^\n]{0,40}?\s[a-z0-9._-]+@[a-z0-9.-]+:",
        ],
    ),
    (
        "inject.tool_coercion",
        &[
            r"\b(?:immediately|silently|quietly|secretly|covertly|(?:assistant|ai|agent|llm|claude|chatgpt|copilot|bot|model)\s?[,:])\s?(?:please\s?|now\s?|also\s?|first\s?|then\s?|must\s?)?(?:run|execute|exec|invoke|eval|evaluate|call)\s?(?:the\s?|this\s?)?(?:following|below|this|these|next)?\s?(?:shell\s?|bash\s?|terminal\s?|python\s?|system\s?)?(?:commands?|code|script|snippet|payload|tool|function)\b",
            r"\b(?:run|execute|exec|invoke)\s?(?:the\s?|this\s?)?(?:following|below|this)\s?(?:shell\s?|bash\s?|terminal\s?|python\s?)?(?:commands?|code|script|snippet)\b[^\n]{0,120}?\b(?:without\s?(?:asking|confirm|confirmation|telling|informing|approval|permission|notifying)|do\s?not\s?(?:ask|tell|inform|mention|notify|show)|don't\s?(?:ask|tell|inform|mention|notify|show))",
            r"\b(?:call|invoke|use|run|trigger|execute)\s?(?:the\s?)?(?:[a-z_.-]+\s?)?(?:tool|function)\s?(?:[`'\x22]?[a-z_.-]+[`'\x22]?\s?)?with\s?(?:the\s?)?(?:following\s?)?(?:arguments?|args|parameters?|params|input|payload|\{)",
            r"\b(?:note|message|instructions?|reminder)\s?(?:to|for)\s?(?:the\s?|all\s?|any\s?)?(?:ai|llm|language\s?model|chatbot|agent|assistant|ai\s?assistant|ai\s?agent)s?\b[^\n]{0,40}?\b(?:run|execute|call|invoke|fetch|visit|open|curl)\b",
            r"\bif\s?you\s?are\s?(?:an?\s?)?(?:ai|llm|language\s?model|assistant|agent|chatbot|bot|ai\s?assistant|ai\s?agent)\b[^\n]{0,60}?\b(?:run|execute|call|invoke|fetch|visit|open|send|ignore|use\s?the)\b",
            r"<tool_call>|</tool_call>|<function_calls?>|<invoke\s?name=|<\|tool_call|<tool_use>|\x22tool_calls\x22\s?:\s?\[",
        ],
    ),
    (ENCODED_PAYLOAD, &[]),
    (
        "inject.secret_request",
        &[
            // A secret the assistant holds: "the database password you're
            // configured with", "the key from your environment".
            r"\b(?:show|print|give|tell|read|reveal|share|list|dump|output|paste|send|expose|display|write|copy|spell|encode|what(?:'s|\s?is|\s?are))\b[^\n.?!]{0,40}\b(?:keys?|tokens?|passwords?|credentials|secrets|api\s?keys?)\b[^\n.?!]{0,30}\b(?:you(?:'re|\s?are)?\s?(?:use|using|configured|hold|have|were\s?given|can\s?(?:see|access|read))|from\s?(?:your|the)\s?(?:environment|env|config|configuration|vault|data\s?dir))",
            // Named gateway secrets.
            r"\b(?:show|print|give|tell|read|reveal|share|list|dump|output|paste|send|expose|what(?:'s|\s?is))\b[^\n.?!]{0,20}\b(?:the|your|this)\s?(?:gateway\s?token|vault\s?key|backup\s?(?:encryption\s?)?key|encryption\s?key|master\s?key|admin\s?password|provider\s?keys?|(?:anthropic|openai)\s?(?:api\s?)?key)\b",
            // The environment as a whole, or the text before the chat.
            r"\b(?:list|print|show|dump|give|output)\s?(?:me\s?)?(?:all\s?|every\s?)?(?:of\s?)?(?:the\s?|your\s?)?environment\s?variables?\b[^\n]{0,40}\b(?:you|your|values?)\b",
            r"\b(?:what\s?(?:were|was)\s?you\s?told|(?:repeat|quote|copy|reproduce|print)\s?(?:everything|all|whatever)\s?(?:that\s?)?(?:came|comes|was|is)\s?before)\b",
            r"\b(?:quote|show|print|reveal|copy|reproduce|share|output|paste|repeat|dump|tell\s?me|written\s?in|what\s?does|summari[sz]e|poem)\b[^\n.?!]{0,40}\b(?:your|the)\s?(?:context\s?window|developer\s?message|initial\s?setup\s?message|setup\s?message|preamble|private\s?guidance|confidential\s?(?:system\s?)?instructions|secret\s?instructions|raw\s?prompt|hidden\s?(?:configuration|config|setup|rules))\b",
        ],
    ),
    (CLASSIFIER, &[]),
];
