// Request headers that make a request personal or change what the origin
// answers (a range, a condition, another method) send it natively. Any
// other header may be set: the module shares no response that varies on
// a request header it does not key on, so a manifest means that header
// cannot change the bytes (jQuery's and axios's Accept, say). The service
// worker answers a Range itself and passes the others on alike.
export const PERSONAL = /^(range|if-.*|x-http-method(-override)?|x-method-override)$|auth|cookie|token|session|secret|key|csrf|xsrf|signature/i;
