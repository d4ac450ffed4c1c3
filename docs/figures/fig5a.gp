# fig5a.gp: written by dds-sim (docs/game.md); run in this folder: gnuplot fig5a.gp
mode = 'momentum'
set terminal pngcairo size 900,560 font ',11'
set output 'fig5a.png'
set termoption noenhanced
set datafile separator ','
set key autotitle columnhead top right
set logscale y
set xlabel 'iteration of the tracked device'
set ylabel 'price seen (money per TFLOP/s)'
set title 'Fig. 5a: the price one device sees, from four start budgets ('.mode.' rule)'
n = system("head -1 fig5a.csv | tr ',' '\n' | wc -l") + 0
plot for [c=3:n] 'fig5a.csv' using 1:c with linespoints pt 7 ps 0.4, \
     'fig5a.csv' using 1:2 with lines dt 2 lc rgb 'black' title 'equilibrium (bisection)'
