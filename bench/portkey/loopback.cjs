// Preloaded into Portkey's gateway (node --require) by bench/run.sh: the
// gateway listens on every interface; the benchmark keeps it on loopback.
const net = require('node:net');
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (port, host, ...rest) {
    if (typeof port === 'number' && (host === undefined || host === null)) {
        host = '127.0.0.1';
    }
    return listen.call(this, port, host, ...rest);
};
